package rest

import (
	"github.com/gofiber/fiber/v2"
	"github.com/switchboard/switchboard/actors/monitoring"
)

// Monitoring a call: POST /v1/calls/{id}/monitor {mode} starts it (202,
// the supervisor's phones ring) or switches the mode (200); DELETE ends it.
// The call's grain decides everything; this file reads and answers.

// MonitorRequest is a supervisor's request on a call. Stop ends monitoring.
type MonitorRequest struct {
	Supervisor string
	Mode       string
	Stop       bool
}

// monitorBody is POST /v1/calls/{id}/monitor, read strictly.
type monitorBody struct {
	Mode       *string `json:"mode"`
	Supervisor *string `json:"supervisor"`
}

func (a *api) monitorRoutes(v1 fiber.Router) {
	v1.Post("/calls/:id/monitor", a.monitor)
	v1.Delete("/calls/:id/monitor", a.unmonitor)
}

func (a *api) monitor(c *fiber.Ctx) error {
	var in monitorBody
	if err := jsonBody(c, &in); err != nil {
		return err
	}
	if in.Mode == nil || !monitoring.Mode(*in.Mode).Valid() {
		return bad("invalid_field", "mode: is required, one of listen, whisper, barge, takeover.")
	}
	sup, err := supervisor(principal(c), in.Supervisor)
	if err != nil {
		return err
	}
	return a.monitorAnswer(c, MonitorRequest{Supervisor: sup, Mode: *in.Mode}, "monitor")
}

func (a *api) unmonitor(c *fiber.Ctx) error {
	p := principal(c)
	var named *string
	if q := c.Query("supervisor"); q != "" {
		named = &q
	}
	// The admin naming nobody stops whoever monitors the call.
	sup := ""
	if named != nil || !p.Admin {
		var err error
		if sup, err = supervisor(p, named); err != nil {
			return err
		}
	}
	return a.monitorAnswer(c, MonitorRequest{Supervisor: sup, Stop: true}, "stop monitoring")
}

func (a *api) monitorAnswer(c *fiber.Ctx, req MonitorRequest, what string) error {
	status, call, err := a.d.Calls.Monitor(c.UserContext(), c.Params("id"), req, principal(c))
	if err != nil {
		return callError(err, what)
	}
	return c.Status(status).JSON(call)
}

// supervisor is who monitors: the caller of the request, or for the admin
// the supervisor the body names.
func supervisor(p Principal, named *string) (string, error) {
	switch {
	case p.Admin && (named == nil || *named == ""):
		return "", bad("invalid_field", "supervisor: is required when the admin asks on a supervisor's behalf.")
	case p.Admin:
		return *named, nil
	case named != nil && *named != p.UserID:
		return "", forbidden("You may monitor only as yourself.")
	}
	return p.UserID, nil
}
