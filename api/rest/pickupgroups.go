package rest

import (
	"slices"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/cluster/directory"
)

// Group call pickup: groups written by the admin, read by the admin and
// the group's members.

func (a *api) pickupGroupRoutes(v1 fiber.Router) {
	v1.Post("/pickup-groups", a.admin, a.createPickupGroup)
	v1.Get("/pickup-groups", a.admin, a.listPickupGroups)
	v1.Get("/pickup-groups/:id", a.getPickupGroup)
	v1.Patch("/pickup-groups/:id", a.admin, a.patchPickupGroup)
	v1.Delete("/pickup-groups/:id", a.admin, a.deletePickupGroup)
}

func (a *api) createPickupGroup(c *fiber.Ctx) error {
	var in directory.PickupGroupInput
	if err := jsonBody(c, &in); err != nil {
		return err
	}
	g, err := a.d.Directory.CreatePickupGroup(c.UserContext(), in)
	if err != nil {
		return settingError(err, "pickup group")
	}
	return c.Status(fiber.StatusCreated).JSON(g)
}

func (a *api) listPickupGroups(c *fiber.Ctx) error {
	cursor, limit, err := page(c)
	if err != nil {
		return err
	}
	gs, next, err := a.d.Directory.ListPickupGroups(c.UserContext(), cursor, limit)
	if err != nil {
		return err
	}
	return list(c, gs, next)
}

func (a *api) getPickupGroup(c *fiber.Ctx) error {
	g, err := a.d.Directory.GetPickupGroup(c.UserContext(), c.Params("id"))
	if err != nil {
		return settingError(err, "pickup group")
	}
	if p := principal(c); !p.Admin && !slices.Contains(g.Members, p.UserID) {
		return forbidden("A pickup group is seen by the admin and its members.")
	}
	return c.JSON(g)
}

func (a *api) patchPickupGroup(c *fiber.Ctx) error {
	var p directory.PickupGroupPatch
	if err := jsonBody(c, &p); err != nil {
		return err
	}
	g, err := a.d.Directory.UpdatePickupGroup(c.UserContext(), c.Params("id"), p)
	if err != nil {
		return settingError(err, "pickup group")
	}
	return c.JSON(g)
}

func (a *api) deletePickupGroup(c *fiber.Ctx) error {
	if err := a.d.Directory.DeletePickupGroup(c.UserContext(), c.Params("id")); err != nil {
		return settingError(err, "pickup group")
	}
	return c.SendStatus(fiber.StatusNoContent)
}
