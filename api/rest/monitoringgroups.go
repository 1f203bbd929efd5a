package rest

import (
	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/cluster/directory"
)

// Monitoring groups (admin only): who may monitor whom, and how. The rule
// that reads them is actors/monitoring's; the directory stores them.

func (a *api) monitoringGroupRoutes(v1 fiber.Router) {
	v1.Post("/monitoring-groups", a.admin, a.createMonitoringGroup)
	v1.Get("/monitoring-groups", a.admin, a.listMonitoringGroups)
	v1.Get("/monitoring-groups/:id", a.admin, a.getMonitoringGroup)
	v1.Patch("/monitoring-groups/:id", a.admin, a.patchMonitoringGroup)
	v1.Delete("/monitoring-groups/:id", a.admin, a.deleteMonitoringGroup)
}

func (a *api) createMonitoringGroup(c *fiber.Ctx) error {
	var in directory.MonitoringGroupInput
	if err := jsonBody(c, &in); err != nil {
		return err
	}
	g, err := a.d.Directory.CreateMonitoringGroup(c.UserContext(), in)
	if err != nil {
		return dirError(err, "monitoring group")
	}
	return c.Status(fiber.StatusCreated).JSON(g)
}

func (a *api) listMonitoringGroups(c *fiber.Ctx) error {
	cursor, limit, err := page(c)
	if err != nil {
		return err
	}
	gs, next, err := a.d.Directory.ListMonitoringGroups(c.UserContext(), cursor, limit)
	if err != nil {
		return err
	}
	return list(c, gs, next)
}

func (a *api) getMonitoringGroup(c *fiber.Ctx) error {
	g, ok := a.d.Directory.MonitoringGroupByID(c.Params("id"))
	if !ok {
		return notFound("The monitoring group")
	}
	return c.JSON(g)
}

func (a *api) patchMonitoringGroup(c *fiber.Ctx) error {
	var p directory.MonitoringGroupPatch
	if err := jsonBody(c, &p); err != nil {
		return err
	}
	g, err := a.d.Directory.UpdateMonitoringGroup(c.UserContext(), c.Params("id"), p)
	if err != nil {
		return dirError(err, "monitoring group")
	}
	return c.JSON(g)
}

func (a *api) deleteMonitoringGroup(c *fiber.Ctx) error {
	if err := a.d.Directory.DeleteMonitoringGroup(c.UserContext(), c.Params("id")); err != nil {
		return dirError(err, "monitoring group")
	}
	return c.SendStatus(fiber.StatusNoContent)
}
