package rest

import (
	"slices"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/cluster/directory"
)

// Shared line groups: written by the admin, read by the admin and the
// group's members.

func (a *api) sharedLineGroupRoutes(v1 fiber.Router) {
	v1.Post("/shared-line-groups", a.admin, a.createSharedLineGroup)
	v1.Get("/shared-line-groups", a.admin, a.listSharedLineGroups)
	v1.Get("/shared-line-groups/:id", a.getSharedLineGroup)
	v1.Patch("/shared-line-groups/:id", a.admin, a.patchSharedLineGroup)
	v1.Delete("/shared-line-groups/:id", a.admin, a.deleteSharedLineGroup)
}

func (a *api) createSharedLineGroup(c *fiber.Ctx) error {
	var in directory.SharedLineGroupInput
	if err := jsonBody(c, &in); err != nil {
		return err
	}
	g, err := a.d.Directory.CreateSharedLineGroup(c.UserContext(), in)
	if err != nil {
		return settingError(err, "shared line group")
	}
	return c.Status(fiber.StatusCreated).JSON(g)
}

func (a *api) listSharedLineGroups(c *fiber.Ctx) error {
	cursor, limit, err := page(c)
	if err != nil {
		return err
	}
	gs, next, err := a.d.Directory.ListSharedLineGroups(c.UserContext(), cursor, limit)
	if err != nil {
		return err
	}
	return list(c, gs, next)
}

func (a *api) getSharedLineGroup(c *fiber.Ctx) error {
	g, err := a.d.Directory.GetSharedLineGroup(c.UserContext(), c.Params("id"))
	if err != nil {
		return settingError(err, "shared line group")
	}
	if p := principal(c); !p.Admin && !slices.Contains(g.Members, p.UserID) {
		return forbidden("A shared line group is seen by the admin and its members.")
	}
	return c.JSON(g)
}

func (a *api) patchSharedLineGroup(c *fiber.Ctx) error {
	var p directory.SharedLineGroupPatch
	if err := jsonBody(c, &p); err != nil {
		return err
	}
	g, err := a.d.Directory.UpdateSharedLineGroup(c.UserContext(), c.Params("id"), p)
	if err != nil {
		return settingError(err, "shared line group")
	}
	return c.JSON(g)
}

func (a *api) deleteSharedLineGroup(c *fiber.Ctx) error {
	if err := a.d.Directory.DeleteSharedLineGroup(c.UserContext(), c.Params("id")); err != nil {
		return deleteError(err, "shared line group")
	}
	return c.SendStatus(fiber.StatusNoContent)
}
