package rest

import (
	"errors"
	"slices"

	"github.com/gofiber/fiber/v2"
)

// visible: a user token sees the calls on their line, on the lines they
// share as a delegate, or with a leg of theirs; the admin sees all.
// (Anything wider, such as a supervisor's group, is for the grains to
// answer through Get and Control.)
func visible(p Principal, shared []string, cl Call) bool {
	if p.Admin || cl.Line == p.UserID || slices.Contains(shared, cl.Line) {
		return true
	}
	return slices.ContainsFunc(cl.Legs, func(l Leg) bool { return l.Party == p.UserID })
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
			var in struct {
				To *string `json:"to"`
			}
			if err := decode(c.Body(), &in); err != nil {
				return err
			}
			if in.To == nil || *in.To == "" {
				return bad("invalid_field", "to: is required (a user id, extension or E.164 number).")
			}
			cmd.To = *in.To
		}
		err := a.d.Calls.Control(c.UserContext(), c.Params("id"), cmd, principal(c))
		var ce *ControlError
		switch {
		case err == nil:
			return c.JSON(fiber.Map{"id": c.Params("id"), "action": action, "status": "ok"})
		case errors.Is(err, ErrNotFound):
			return notFound("The call")
		case errors.Is(err, ErrForbidden):
			return forbidden("You may not " + action + " this call.")
		case errors.Is(err, ErrConflict):
			return &apiError{fiber.StatusConflict, "conflict", "The call cannot be changed now: " + err.Error() + "."}
		case errors.As(err, &ce) && ce.Status >= 400 && ce.Status < 500:
			code := ce.Code
			if code == "" {
				code = "refused"
			}
			return &apiError{ce.Status, code, ce.Message}
		}
		return err
	}
}

func (a *api) cluster(c *fiber.Ctx) error {
	return list(c, a.d.Cluster.Members(), "")
}
