package rest

import (
	"errors"

	"github.com/gofiber/fiber/v2"
	"github.com/switchboard/switchboard/actors/call"
)

// visible asks the call's rule (call.Visible) whether p may see cl.
func visible(p Principal, shared []string, cl Call) bool {
	parties := make([]string, len(cl.Legs))
	for i, l := range cl.Legs {
		parties[i] = l.Party
	}
	return call.Visible(call.Viewer{User: p.UserID, Admin: p.Admin, Shared: shared}, cl.Line, parties)
}

// shared is the lines the principal sees as a delegate.
func (a *api) shared(c *fiber.Ctx) ([]string, error) {
	p := principal(c)
	if p.Admin || a.d.Delegation == nil {
		return nil, nil
	}
	return a.d.Delegation.Shared(c.UserContext(), p.UserID)
}

func (a *api) listCalls(c *fiber.Ctx) error {
	calls, err := a.d.Calls.List(c.UserContext())
	if err != nil {
		return err
	}
	shared, err := a.shared(c)
	if err != nil {
		return err
	}
	p := principal(c)
	items := make([]Call, 0, len(calls))
	for _, cl := range calls {
		if visible(p, shared, cl) {
			items = append(items, cl)
		}
	}
	return list(c, items, "")
}

func (a *api) getCall(c *fiber.Ctx) error {
	cl, err := a.d.Calls.Get(c.UserContext(), c.Params("id"))
	shared, serr := a.shared(c)
	if serr != nil {
		return serr
	}
	// A call the user may not see is as unknown to them as a missing one.
	if errors.Is(err, ErrNotFound) || (err == nil && !visible(principal(c), shared, cl)) {
		return notFound("The call")
	}
	if err != nil {
		return err
	}
	return c.JSON(cl)
}

func (a *api) control(action string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		cmd := Command{Action: action}
		if action == "transfer" {
			var in transferBody
			if err := jsonBody(c, &in); err != nil {
				return err
			}
			if in.To == nil || *in.To == "" {
				return bad("invalid_field", "to: is required (a user id, extension or E.164 number).")
			}
			cmd.To = *in.To
		}
		err := a.d.Calls.Control(c.UserContext(), c.Params("id"), cmd, principal(c))
		if err != nil {
			return callError(err, action)
		}
		return c.JSON(fiber.Map{"id": c.Params("id"), "action": action, "status": "ok"})
	}
}

// callError turns a grain's refusal into the error shape of openapi.json.
func callError(err error, action string) error {
	var ce *ControlError
	switch {
	case errors.Is(err, ErrNotFound):
		return notFound("The call")
	case errors.Is(err, ErrForbidden):
		return forbidden("You may not " + action + " this call.")
	case errors.Is(err, ErrConflict):
		return &apiError{fiber.StatusConflict, "conflict", "The call cannot be changed now: " + err.Error() + "."}
	case errors.As(err, &ce) && (ce.Status >= 400 && ce.Status < 500 || ce.Status == fiber.StatusServiceUnavailable):
		code := ce.Code
		if code == "" {
			code = "refused"
		}
		return &apiError{ce.Status, code, sentence(ce.Message)}
	}
	return err
}

// transferBody is POST /v1/calls/{id}/transfer.
type transferBody struct {
	To *string `json:"to"`
}

// dialBody is POST /v1/calls, read strictly.
type dialBody struct {
	FromUser   *string `json:"from_user"`
	To         *string `json:"to"`
	OnBehalfOf *string `json:"on_behalf_of"`
}

// dial is click-to-call: from_user's devices ring, and the one answered
// dials to as if from_user had dialed it from a phone. A user token places
// calls only as itself; whether it may call on on_behalf_of's line is the
// call grain's rule, as over SIP.
func (a *api) dial(c *fiber.Ctx) error {
	var in dialBody
	if err := jsonBody(c, &in); err != nil {
		return err
	}
	switch {
	case in.FromUser == nil || *in.FromUser == "":
		return bad("invalid_field", "from_user: is required (a user id).")
	case in.To == nil || *in.To == "":
		return bad("invalid_field", "to: is required (a user id, extension or E.164 number).")
	}
	if p := principal(c); !p.Admin && p.UserID != *in.FromUser {
		return forbidden("A user token may place calls only as its own user.")
	}
	d := DialRequest{From: *in.FromUser, To: *in.To}
	if in.OnBehalfOf != nil {
		d.OnBehalfOf = *in.OnBehalfOf
	}
	for _, f := range [][2]string{{"from_user", d.From}, {"on_behalf_of", d.OnBehalfOf}} {
		if _, ok := a.d.Directory.UserByID(f[1]); f[1] != "" && !ok {
			return &apiError{fiber.StatusNotFound, "not_found", f[0] + ": user " + f[1] + " was not found."}
		}
	}
	cl, err := a.d.Calls.Dial(c.UserContext(), d)
	if err != nil {
		return callError(err, "place")
	}
	return c.Status(fiber.StatusCreated).JSON(cl)
}

func (a *api) cluster(c *fiber.Ctx) error {
	return list(c, a.d.Cluster.Members(), "")
}
