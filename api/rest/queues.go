package rest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/cluster/directory"
)

// Call queues: their settings are the directory's (written by the admin);
// opt-in, opt-out and the stats are the queue grain's, reached through
// Deps.Queues.

// maxReason is an opt-out reason's length in characters.
const maxReason = 100

// optOutBody is POST /v1/queues/{id}/members/{user}/opt-out, whose body may
// be left out.
type optOutBody struct {
	Reason *string `json:"reason"`
}

func (a *api) queueRoutes(v1 fiber.Router) {
	v1.Post("/queues", a.admin, a.createQueue)
	v1.Get("/queues", a.admin, a.listQueues)
	v1.Get("/queues/:id", a.getQueue)
	v1.Patch("/queues/:id", a.admin, a.patchQueue)
	v1.Delete("/queues/:id", a.admin, a.deleteQueue)
	v1.Post("/queues/:id/members/:user/opt-in", a.optIn)
	v1.Post("/queues/:id/members/:user/opt-out", a.optOut)
	v1.Get("/queues/:id/stats", a.queueStats)
}

// settingError maps the directory's refusal of a queue or group (what) to
// an answer: its rules' refusals are 422s with their own codes.
func settingError(err error, what string) error {
	var re *directory.RuleError
	if errors.As(err, &re) {
		return &apiError{fiber.StatusUnprocessableEntity, re.Code, re.Error() + "."}
	}
	return dirError(err, what)
}

// deleteError is settingError for a delete, which a setting still in use
// refuses.
func deleteError(err error, what string) error {
	if errors.Is(err, directory.ErrExists) {
		return &apiError{fiber.StatusConflict, "conflict", fmt.Sprintf("The %s could not be removed: %s.", what, err)}
	}
	return settingError(err, what)
}

func (a *api) createQueue(c *fiber.Ctx) error {
	var in directory.QueueInput
	if err := jsonBody(c, &in); err != nil {
		return err
	}
	q, err := a.d.Directory.CreateQueue(c.UserContext(), in)
	if err != nil {
		return settingError(err, "queue")
	}
	return c.Status(fiber.StatusCreated).JSON(q)
}

func (a *api) listQueues(c *fiber.Ctx) error {
	cursor, limit, err := page(c)
	if err != nil {
		return err
	}
	qs, next, err := a.d.Directory.ListQueues(c.UserContext(), cursor, limit)
	if err != nil {
		return err
	}
	return list(c, qs, next)
}

// readableQueue reads the queue in :id for someone who may see it: the
// admin, its admins and its members.
func (a *api) readableQueue(c *fiber.Ctx) (directory.Queue, error) {
	q, err := a.d.Directory.GetQueue(c.UserContext(), c.Params("id"))
	if err != nil {
		return q, settingError(err, "queue")
	}
	p := principal(c)
	if !p.Admin && !slices.Contains(q.Admins, p.UserID) && !slices.Contains(q.MemberUsers(), p.UserID) {
		return q, forbidden("A queue is seen by the admin, the queue's admins and its members.")
	}
	return q, nil
}

func (a *api) getQueue(c *fiber.Ctx) error {
	q, err := a.readableQueue(c)
	if err != nil {
		return err
	}
	return c.JSON(q)
}

func (a *api) patchQueue(c *fiber.Ctx) error {
	var p directory.QueuePatch
	if err := jsonBody(c, &p); err != nil {
		return err
	}
	q, err := a.d.Directory.UpdateQueue(c.UserContext(), c.Params("id"), p)
	if err != nil {
		return settingError(err, "queue")
	}
	return c.JSON(q)
}

func (a *api) deleteQueue(c *fiber.Ctx) error {
	if err := a.d.Directory.DeleteQueue(c.UserContext(), c.Params("id")); err != nil {
		return deleteError(err, "queue")
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *api) optIn(c *fiber.Ctx) error { return a.setOptIn(c, true, "") }

func (a *api) optOut(c *fiber.Ctx) error {
	var in optOutBody
	if len(bytes.TrimSpace(c.Body())) > 0 {
		if err := jsonBody(c, &in); err != nil {
			return err
		}
	}
	reason := ""
	if in.Reason != nil {
		reason = *in.Reason
	}
	if err := checkReason(reason); err != nil {
		return err
	}
	return a.setOptIn(c, false, reason)
}

// checkReason keeps a reason to one line of at most maxReason characters:
// it is shown in the queue's stats.
func checkReason(s string) error {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxReason {
		return bad("invalid_field", fmt.Sprintf("reason: must be text of at most %d characters.", maxReason))
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Bidi_Control) {
			return bad("invalid_field", "reason: must be one line of text: no control characters and no direction overrides.")
		}
	}
	return nil
}

// setOptIn opts the member in :user in or out of the queue in :id: the
// member themselves, the admin or one of the queue's admins may.
func (a *api) setOptIn(c *fiber.Ctx, in bool, reason string) error {
	q, err := a.d.Directory.GetQueue(c.UserContext(), c.Params("id"))
	if err != nil {
		return settingError(err, "queue")
	}
	user := c.Params("user")
	if a.d.Queues == nil {
		return errNoQueues
	}
	// Who may opt whom is the queue's rule: its grain answers 403.
	body, err := a.d.Queues.SetOptIn(c.UserContext(), principal(c), q.ID, user, in, reason)
	if err != nil {
		return queueError(err, "The queue member "+user)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(body)
}

func (a *api) queueStats(c *fiber.Ctx) error {
	q, err := a.readableQueue(c)
	if err != nil {
		return err
	}
	if a.d.Queues == nil {
		return errNoQueues
	}
	body, err := a.d.Queues.Stats(c.UserContext(), q.ID)
	if err != nil {
		return queueError(err, "The queue")
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(body)
}

// errNoQueues answers on a node built without the queue grains.
var errNoQueues = &apiError{fiber.StatusServiceUnavailable, "unavailable", "The queue grains are not available on this node."}

// queueError turns a queue grain's refusal into an answer; what names the
// thing a 404 is about.
func queueError(err error, what string) error {
	var ce *ControlError
	switch {
	case errors.Is(err, ErrNotFound):
		return notFound(what)
	case errors.Is(err, ErrForbidden):
		return &apiError{fiber.StatusForbidden, "not_allowed", "You may not do this on this queue."}
	case errors.As(err, &ce) && (ce.Status >= 400 && ce.Status < 500 || ce.Status == fiber.StatusServiceUnavailable):
		code := ce.Code
		if code == "" {
			code = "refused"
		}
		return &apiError{ce.Status, code, sentence(ce.Message)}
	}
	return fmt.Errorf("queue: %w", err)
}
