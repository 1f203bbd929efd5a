package rest

import (
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/cluster/directory"
	"github.com/switchboard/switchboard/cluster/history"
)

// dirError maps the directory's typed errors to answers.
func dirError(err error, what string) error {
	var fe *directory.FieldError
	switch {
	case errors.As(err, &fe):
		return bad("invalid_field", fe.Error()+".")
	case errors.Is(err, directory.ErrExists):
		return &apiError{fiber.StatusConflict, "conflict", fmt.Sprintf("The %s could not be saved: %s.", what, err)}
	case errors.Is(err, directory.ErrNotFound):
		return notFound("The " + what)
	}
	return err
}

// created is a new user as POST /v1/users answers: the user and its token.
type created struct {
	directory.User
	Token string `json:"token"`
}

func (a *api) createUser(c *fiber.Ctx) error {
	var in directory.UserInput
	if err := jsonBody(c, &in); err != nil {
		return err
	}
	u, tok, err := a.d.Directory.CreateUser(c.UserContext(), in)
	if err != nil {
		return dirError(err, "user")
	}
	return c.Status(fiber.StatusCreated).JSON(created{u, tok})
}

func (a *api) listUsers(c *fiber.Ctx) error {
	cursor, limit, err := page(c)
	if err != nil {
		return err
	}
	us, next, err := a.d.Directory.ListUsers(c.UserContext(), cursor, limit)
	if err != nil {
		return err
	}
	return list(c, us, next)
}

func (a *api) getUser(c *fiber.Ctx) error {
	u, ok := a.d.Directory.UserByID(c.Params("id"))
	if !ok {
		return notFound("The user")
	}
	return c.JSON(u)
}

func (a *api) patchUser(c *fiber.Ctx) error {
	var p directory.UserPatch
	if err := jsonBody(c, &p); err != nil {
		return err
	}
	if !principal(c).Admin && !p.SelfService() {
		return forbidden("A user may change only their own name, timezone and business_hours.")
	}
	u, err := a.d.Directory.UpdateUser(c.UserContext(), c.Params("id"), p)
	if err != nil {
		return dirError(err, "user")
	}
	return c.JSON(u)
}

func (a *api) deleteUser(c *fiber.Ctx) error {
	if err := a.d.Directory.DeleteUser(c.UserContext(), c.Params("id")); err != nil {
		return dirError(err, "user")
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *api) reissueToken(c *fiber.Ctx) error {
	tok, err := a.d.Directory.ReissueToken(c.UserContext(), c.Params("id"))
	if err != nil {
		return dirError(err, "user")
	}
	return c.JSON(fiber.Map{"id": c.Params("id"), "token": tok})
}

// ---- history -----------------------------------------------------------------

func (a *api) listHistory(c *fiber.Ctx) error {
	cursor, limit, err := page(c)
	if err != nil {
		return err
	}
	if _, ok := a.d.Directory.UserByID(c.Params("id")); !ok {
		return notFound("The user")
	}
	items, next, err := history.List(c.UserContext(), a.d.Store, c.Params("id"), cursor, limit)
	if err != nil {
		return err
	}
	return list(c, items, next)
}

func (a *api) deleteHistory(c *fiber.Ctx) error {
	err := history.Delete(c.UserContext(), a.d.Store, c.Params("id"), c.Params("entry"))
	if errors.Is(err, history.ErrNotFound) {
		return notFound("The history entry")
	}
	if err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// ---- trunks ------------------------------------------------------------------

// trunkInput is the body of POST /v1/trunks.
type trunkInput struct {
	ID           string   `json:"id"`
	Address      string   `json:"address"`
	InboundCIDRs []string `json:"inbound_cidrs"`
	Outbound     bool     `json:"outbound"`
}

func (a *api) createTrunk(c *fiber.Ctx) error {
	var in trunkInput
	if err := jsonBody(c, &in); err != nil {
		return err
	}
	t, err := a.d.Directory.CreateTrunk(c.UserContext(), directory.Trunk{ID: in.ID, Address: in.Address, InboundCIDRs: in.InboundCIDRs, Outbound: in.Outbound})
	if err != nil {
		return dirError(err, "trunk")
	}
	return c.Status(fiber.StatusCreated).JSON(t)
}

func (a *api) listTrunks(c *fiber.Ctx) error {
	cursor, limit, err := page(c)
	if err != nil {
		return err
	}
	ts, next, err := a.d.Directory.ListTrunks(c.UserContext(), cursor, limit)
	if err != nil {
		return err
	}
	return list(c, ts, next)
}

func (a *api) getTrunk(c *fiber.Ctx) error {
	t, ok := a.d.Directory.TrunkByID(c.Params("id"))
	if !ok {
		return notFound("The trunk")
	}
	return c.JSON(t)
}

func (a *api) deleteTrunk(c *fiber.Ctx) error {
	if err := a.d.Directory.DeleteTrunk(c.UserContext(), c.Params("id")); err != nil {
		return dirError(err, "trunk")
	}
	return c.SendStatus(fiber.StatusNoContent)
}
