package rest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/gofiber/fiber/v2"
)

// SMS and Team SMS: the REST layer checks the shape of a request (who sends
// is the token's principal); Deps.SMS decides who may send from a number,
// see a thread, claim, release or transfer it.

const (
	// maxRecipients is how many recipients one POST /v1/sms may name.
	maxRecipients = 10
	// maxSMSBytes bounds a message's text, counted in bytes as a carrier
	// counts it, not in characters.
	maxSMSBytes = 1600
)

// smsBody is POST /v1/sms.
type smsBody struct {
	From *string  `json:"from"`
	To   []string `json:"to"`
	Text *string  `json:"text"`
}

// replyBody is POST /v1/sms/threads/{id}/reply.
type replyBody struct {
	Text *string `json:"text"`
}

func (a *api) smsRoutes(v1 fiber.Router) {
	v1.Post("/sms", a.sendSMS)
	v1.Get("/sms/threads", a.listThreads)
	v1.Get("/sms/threads/:id", a.getThread)
	v1.Post("/sms/threads/:id/reply", a.replyThread)
	v1.Post("/sms/threads/:id/release", a.releaseThread)
	v1.Post("/sms/threads/:id/transfer", a.transferThread)
	v1.Get("/queues/:id/sms-stats", a.smsStats)
}

// errNoSMS answers on a node built without the SMS grains. The body is
// checked before it, so a client learns of its own mistakes first.
var errNoSMS = &apiError{status: fiber.StatusServiceUnavailable, code: "unavailable", message: "SMS is not available on this node."}

// checkText holds a message's text to 1..maxSMSBytes bytes.
func checkText(text *string) error {
	if text == nil || len(*text) == 0 || len(*text) > maxSMSBytes {
		return bad("invalid_field", fmt.Sprintf("text: must be 1 to %d bytes.", maxSMSBytes))
	}
	return nil
}

func (a *api) sendSMS(c *fiber.Ctx) error {
	var in smsBody
	if err := jsonBody(c, &in); err != nil {
		return err
	}
	if in.From == nil || *in.From == "" {
		return bad("invalid_field", "from: is required (one of your numbers, or the number of a queue you are a member of).")
	}
	switch n := len(in.To); {
	case n == 0:
		return bad("invalid_field", fmt.Sprintf("to: must list 1 to %d recipients (user ids, extensions or E.164 numbers).", maxRecipients))
	case n > maxRecipients:
		return bad("too_many_recipients", fmt.Sprintf("to: lists %d recipients; at most %d are allowed.", n, maxRecipients))
	}
	for i, to := range in.To {
		if to == "" {
			return bad("invalid_field", fmt.Sprintf("to[%d]: must not be empty.", i))
		}
	}
	if err := checkText(in.Text); err != nil {
		return err
	}
	if a.d.SMS == nil {
		return errNoSMS
	}
	sent, err := a.d.SMS.Send(c.UserContext(), principal(c), *in.From, in.To, *in.Text)
	if err != nil {
		return smsError(err, "The from number or a recipient", "send from "+*in.From)
	}
	if sent.ThreadIDs == nil {
		sent.ThreadIDs = []string{}
	}
	return c.Status(fiber.StatusAccepted).JSON(sent)
}

func (a *api) listThreads(c *fiber.Ctx) error {
	owner := c.Query("owner")
	if owner == "" {
		return bad("invalid_field", "owner: is required (a user id or a queue id).")
	}
	if a.d.SMS == nil {
		return errNoSMS
	}
	items, err := a.d.SMS.Threads(c.UserContext(), principal(c), owner)
	if err != nil {
		return smsError(err, "The owner "+owner, "see the threads of "+owner)
	}
	return list(c, items, "")
}

// threadID is the :id of a thread route, URL-decoded: an id such as
// "sales:+14155550100" may come as it is or percent-encoded.
func threadID(c *fiber.Ctx) (string, error) {
	id, err := url.PathUnescape(c.Params("id"))
	if err != nil || id == "" {
		return "", bad("invalid_field", "id: must be a thread id, percent-encoded where needed.")
	}
	return id, nil
}

func (a *api) getThread(c *fiber.Ctx) error {
	id, err := threadID(c)
	if err != nil {
		return err
	}
	if a.d.SMS == nil {
		return errNoSMS
	}
	body, err := a.d.SMS.Thread(c.UserContext(), principal(c), id)
	if err != nil {
		return smsError(err, "The thread", "see this thread")
	}
	return sendJSON(c, body)
}

func (a *api) replyThread(c *fiber.Ctx) error {
	var in replyBody
	if err := jsonBody(c, &in); err != nil {
		return err
	}
	if err := checkText(in.Text); err != nil {
		return err
	}
	return a.act(c, "reply", *in.Text, "")
}

func (a *api) releaseThread(c *fiber.Ctx) error { return a.act(c, "release", "", "") }

func (a *api) transferThread(c *fiber.Ctx) error {
	var in transferBody
	if err := jsonBody(c, &in); err != nil {
		return err
	}
	if in.To == nil || *in.To == "" {
		return bad("invalid_field", "to: is required (the user id of a member of the thread's queue).")
	}
	return a.act(c, "transfer", "", *in.To)
}

// act carries out action on the thread in :id and answers the thread.
func (a *api) act(c *fiber.Ctx, action, text, to string) error {
	id, err := threadID(c)
	if err != nil {
		return err
	}
	if a.d.SMS == nil {
		return errNoSMS
	}
	body, err := a.d.SMS.Act(c.UserContext(), principal(c), id, action, text, to)
	if err != nil {
		return smsError(err, "The thread", action+" this thread")
	}
	return sendJSON(c, body)
}

func (a *api) smsStats(c *fiber.Ctx) error {
	if a.d.SMS == nil {
		return errNoSMS
	}
	q := c.Params("id")
	body, err := a.d.SMS.Stats(c.UserContext(), principal(c), q)
	if err != nil {
		return smsError(err, "The queue", "see the SMS stats of "+q)
	}
	return sendJSON(c, body)
}

// sendJSON answers 200 with a body the dependency already encoded.
func sendJSON(c *fiber.Ctx, body json.RawMessage) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(body)
}

// smsError turns the SMS dependency's refusal into an answer: what names
// the thing a 404 is about, doing what a 403 refused. A 409 thread_claimed
// keeps its holder for the error object.
func smsError(err error, what, doing string) error {
	var ce *ControlError
	switch {
	case errors.Is(err, ErrNotFound):
		return notFound(what)
	case errors.Is(err, ErrForbidden):
		return forbidden("You may not " + doing + ".")
	case errors.Is(err, ErrConflict):
		return &apiError{status: fiber.StatusConflict, code: "conflict", message: sentence(err.Error())}
	case errors.As(err, &ce) && (ce.Status >= 400 && ce.Status < 500 || ce.Status == fiber.StatusServiceUnavailable):
		code := ce.Code
		if code == "" {
			code = "refused"
		}
		ae := apiError{status: ce.Status, code: code, message: sentence(ce.Message)}
		if ce.Holder != "" {
			return &heldError{ae, ce.Holder}
		}
		return &ae
	}
	return fmt.Errorf("sms: %w", err)
}
