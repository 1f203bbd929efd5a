package rest

import (
	"bufio"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard/switchboard/actors/directory"
	"github.com/switchboard/switchboard/actors/history"
	"github.com/switchboard/switchboard/api/metrics"
)

type api struct {
	d   Deps
	log *slog.Logger
}

// New builds the app.
func New(d Deps, log *slog.Logger) *fiber.App {
	a := &api{d: d, log: log}
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		BodyLimit:             64 << 10,
		ReadTimeout:           10 * time.Second,
		ErrorHandler:          a.errorHandler,
	})
	app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Get("/readyz", a.readyz)
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{})))

	v1 := app.Group("/v1", a.auth)
	v1.Post("/users", a.admin, a.createUser)
	v1.Get("/users", a.admin, a.listUsers)
	v1.Get("/users/:id", a.selfOrAdmin, a.getUser)
	v1.Patch("/users/:id", a.selfOrAdmin, a.patchUser)
	v1.Delete("/users/:id", a.admin, a.deleteUser)
	v1.Post("/users/:id/token", a.admin, a.reissueToken)
	v1.Get("/users/:id/history", a.selfOrAdmin, a.listHistory)
	v1.Delete("/users/:id/history/:entry", a.selfOrAdmin, a.deleteHistory)
	v1.Post("/trunks", a.admin, a.createTrunk)
	v1.Get("/trunks", a.admin, a.listTrunks)
	v1.Get("/trunks/:id", a.admin, a.getTrunk)
	v1.Delete("/trunks/:id", a.admin, a.deleteTrunk)
	v1.Get("/calls", a.listCalls)
	v1.Get("/calls/:id", a.getCall)
	for _, action := range []string{"hold", "resume", "hangup"} {
		v1.Post("/calls/:id/"+action, a.control(action))
	}
	v1.Get("/cluster", a.admin, a.cluster)
	v1.Get("/events", a.events)
	app.Use(func(c *fiber.Ctx) error {
		return fail(c, 404, "not_found", fmt.Sprintf("no route %s %s", c.Method(), c.Path()))
	})
	return app
}

// fail writes the INTERFACE.md error shape.
func fail(c *fiber.Ctx, status int, code, msg string) error {
	return c.Status(status).JSON(fiber.Map{"error": fiber.Map{"code": code, "message": msg}})
}

// inputError is bad input found by a helper; the error handler answers it.
type inputError struct {
	status        int
	code, message string
}

func (e *inputError) Error() string { return e.message }

func bad(code, msg string) error { return &inputError{400, code, msg} }

func (a *api) errorHandler(c *fiber.Ctx, err error) error {
	var ie *inputError
	if errors.As(err, &ie) {
		return fail(c, ie.status, ie.code, ie.message)
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code := strings.ToLower(strings.ReplaceAll(fe.Message, " ", "_"))
		return fail(c, fe.Code, code, fe.Message)
	}
	a.log.Error("rest: internal error", "path", c.Path(), "err", err)
	return fail(c, 500, "internal", "internal error")
}

func (a *api) readyz(c *fiber.Ctx) error {
	if err := a.d.Ready(); err != nil {
		return fail(c, 503, "not_ready", err.Error())
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// ---- auth ---------------------------------------------------------------------

func (a *api) auth(c *fiber.Ctx) error {
	h := c.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return fail(c, 401, "unauthorized", "an Authorization: Bearer <token> header is required")
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(a.d.AdminToken)) == 1 {
		c.Locals("p", Principal{Admin: true})
		return c.Next()
	}
	u, ok := a.d.Directory.UserByToken(tok)
	if !ok {
		return fail(c, 401, "unauthorized", "the token is not valid")
	}
	c.Locals("p", Principal{UserID: u.ID})
	return c.Next()
}

func principal(c *fiber.Ctx) Principal { p, _ := c.Locals("p").(Principal); return p }

func (a *api) admin(c *fiber.Ctx) error {
	if !principal(c).Admin {
		return fail(c, 403, "forbidden", "this needs the admin token")
	}
	return c.Next()
}

func (a *api) selfOrAdmin(c *fiber.Ctx) error {
	p := principal(c)
	if !p.Admin && p.UserID != c.Params("id") {
		return fail(c, 403, "forbidden", "a user token may act only on its own user")
	}
	return c.Next()
}

// ---- input ----------------------------------------------------------------------

// decode reads a JSON body strictly: unknown fields and bad types are named.
func decode(c *fiber.Ctx, v any) error {
	body := c.Body()
	if len(strings.TrimSpace(string(body))) == 0 {
		return bad("invalid_json", "the request body must be a JSON object")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return bad("invalid_field", fmt.Sprintf("%s: must be %s", te.Field, te.Type))
		case errors.As(err, &se):
			return bad("invalid_json", fmt.Sprintf("body is not valid JSON (at byte %d)", se.Offset))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return bad("unknown_field", fmt.Sprintf("%s: is not a known field", strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)))
		default:
			return bad("invalid_json", "body could not be read as JSON: "+err.Error())
		}
	}
	if dec.More() {
		return bad("invalid_json", "body has data after the JSON object")
	}
	return nil
}

// dirError maps directory errors to answers.
func dirError(c *fiber.Ctx, err error, what string) error {
	var fe *directory.FieldError
	switch {
	case errors.As(err, &fe):
		return bad("invalid_field", fe.Error())
	case errors.Is(err, directory.ErrExists):
		return fail(c, 409, "conflict", what+" conflicts with an existing one (id, extension or number in use)")
	case errors.Is(err, directory.ErrNotFound):
		return fail(c, 404, "not_found", what+" not found")
	}
	return err
}

func page(c *fiber.Ctx) (string, int, error) {
	limit := 0
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			return "", 0, bad("invalid_field", "limit: must be a number from 1 to 500")
		}
		limit = n
	}
	return c.Query("cursor"), limit, nil
}

// ---- users ------------------------------------------------------------------------

type userView struct {
	ID               string          `json:"id"`
	Name             string          `json:"name"`
	Extension        string          `json:"extension"`
	Numbers          []string        `json:"numbers"`
	Timezone         string          `json:"timezone"`
	BusinessHours    directory.Hours `json:"business_hours"`
	PowerPack        bool            `json:"power_pack"`
	VoicemailEnabled bool            `json:"voicemail_enabled"`
	SRTP             string          `json:"srtp"`
	CreatedAt        time.Time       `json:"created_at"`
	Token            string          `json:"token,omitempty"`
}

func view(u directory.User) userView {
	return userView{ID: u.ID, Name: u.Name, Extension: u.Extension, Numbers: u.Numbers, Timezone: u.Timezone,
		BusinessHours: u.BusinessHours, PowerPack: u.PowerPack, VoicemailEnabled: u.VoicemailEnabled, SRTP: u.SRTP, CreatedAt: u.CreatedAt}
}

func (a *api) createUser(c *fiber.Ctx) error {
	var in directory.UserInput
	if err := decode(c, &in); err != nil {
		return err
	}
	u, tok, err := a.d.Directory.CreateUser(c.UserContext(), in)
	if err != nil {
		return dirError(c, err, "user")
	}
	v := view(u)
	v.Token = tok
	return c.Status(201).JSON(v)
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
	items := make([]userView, 0, len(us))
	for _, u := range us {
		items = append(items, view(u))
	}
	return c.JSON(fiber.Map{"items": items, "next": next})
}

func (a *api) getUser(c *fiber.Ctx) error {
	u, ok := a.d.Directory.UserByID(c.Params("id"))
	if !ok {
		return fail(c, 404, "not_found", "user not found")
	}
	return c.JSON(view(u))
}

func (a *api) patchUser(c *fiber.Ctx) error {
	var p directory.UserPatch
	if err := decode(c, &p); err != nil {
		return err
	}
	if !principal(c).Admin && !p.SelfService() {
		return fail(c, 403, "forbidden", "a user may change only their own name, timezone and business_hours")
	}
	u, err := a.d.Directory.UpdateUser(c.UserContext(), c.Params("id"), p)
	if err != nil {
		return dirError(c, err, "user")
	}
	return c.JSON(view(u))
}

func (a *api) deleteUser(c *fiber.Ctx) error {
	if err := a.d.Directory.DeleteUser(c.UserContext(), c.Params("id")); err != nil {
		return dirError(c, err, "user")
	}
	return c.SendStatus(204)
}

func (a *api) reissueToken(c *fiber.Ctx) error {
	tok, err := a.d.Directory.ReissueToken(c.UserContext(), c.Params("id"))
	if err != nil {
		return dirError(c, err, "user")
	}
	return c.JSON(fiber.Map{"id": c.Params("id"), "token": tok})
}

// ---- history --------------------------------------------------------------------------

func (a *api) listHistory(c *fiber.Ctx) error {
	cursor, limit, err := page(c)
	if err != nil {
		return err
	}
	items, next, err := history.List(c.UserContext(), a.d.Store, c.Params("id"), cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": items, "next": next})
}

func (a *api) deleteHistory(c *fiber.Ctx) error {
	err := history.Delete(c.UserContext(), a.d.Store, c.Params("id"), c.Params("entry"))
	if errors.Is(err, history.ErrNotFound) {
		return fail(c, 404, "not_found", "history entry not found")
	}
	if err != nil {
		return err
	}
	return c.SendStatus(204)
}

// ---- trunks -----------------------------------------------------------------------------

type trunkView struct {
	ID           string   `json:"id"`
	Address      string   `json:"address"`
	InboundCIDRs []string `json:"inbound_cidrs"`
	Outbound     bool     `json:"outbound"`
}

func (a *api) createTrunk(c *fiber.Ctx) error {
	var in trunkView
	if err := decode(c, &in); err != nil {
		return err
	}
	t, err := a.d.Directory.CreateTrunk(c.UserContext(), directory.Trunk{ID: in.ID, Address: in.Address, InboundCIDRs: in.InboundCIDRs, Outbound: in.Outbound})
	if err != nil {
		return dirError(c, err, "trunk")
	}
	return c.Status(201).JSON(trunkView{t.ID, t.Address, t.InboundCIDRs, t.Outbound})
}

func (a *api) listTrunks(c *fiber.Ctx) error {
	items := []trunkView{}
	for _, t := range a.d.Directory.ListTrunks() {
		items = append(items, trunkView{t.ID, t.Address, t.InboundCIDRs, t.Outbound})
	}
	return c.JSON(fiber.Map{"items": items, "next": ""})
}

func (a *api) getTrunk(c *fiber.Ctx) error {
	t, ok := a.d.Directory.TrunkByID(c.Params("id"))
	if !ok {
		return fail(c, 404, "not_found", "trunk not found")
	}
	return c.JSON(trunkView{t.ID, t.Address, t.InboundCIDRs, t.Outbound})
}

func (a *api) deleteTrunk(c *fiber.Ctx) error {
	if err := a.d.Directory.DeleteTrunk(c.UserContext(), c.Params("id")); err != nil {
		return dirError(c, err, "trunk")
	}
	return c.SendStatus(204)
}

// ---- calls ----------------------------------------------------------------------------------

func visible(p Principal, cl Call) bool {
	if p.Admin || cl.Line == p.UserID {
		return true
	}
	for _, l := range cl.Legs {
		if l.Party == p.UserID {
			return true
		}
	}
	return false
}

func (a *api) listCalls(c *fiber.Ctx) error {
	calls, err := a.d.Calls.List(c.UserContext())
	if err != nil {
		return err
	}
	p := principal(c)
	items := []Call{}
	for _, cl := range calls {
		if visible(p, cl) {
			items = append(items, cl)
		}
	}
	return c.JSON(fiber.Map{"items": items, "next": ""})
}

func (a *api) getCall(c *fiber.Ctx) error {
	cl, err := a.d.Calls.Get(c.UserContext(), c.Params("id"))
	if errors.Is(err, ErrNotFound) || (err == nil && !visible(principal(c), cl)) {
		return fail(c, 404, "not_found", "call not found")
	}
	if err != nil {
		return err
	}
	return c.JSON(cl)
}

func (a *api) control(action string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		err := a.d.Calls.Control(c.UserContext(), c.Params("id"), action, principal(c))
		var ce *ControlError
		switch {
		case err == nil:
			return c.JSON(fiber.Map{"id": c.Params("id"), "action": action, "status": "ok"})
		case errors.As(err, &ce):
			return fail(c, ce.Status, ce.Code, ce.Message)
		case errors.Is(err, ErrNotFound):
			return fail(c, 404, "not_found", "call not found")
		}
		return err
	}
}

func (a *api) cluster(c *fiber.Ctx) error {
	ms := a.d.Cluster.Members()
	if ms == nil {
		ms = []Member{}
	}
	return c.JSON(fiber.Map{"items": ms, "next": ""})
}

// ---- events ---------------------------------------------------------------------------------

// events streams Server-Sent Events the principal may see until the client
// goes away.
func (a *api) events(c *fiber.Ctx) error {
	p := principal(c)
	sub := a.d.Events.Subscribe(256)
	c.Set("Content-Type", "text/event-stream")
	c.Set("Cache-Control", "no-cache")
	c.Set("Connection", "keep-alive")
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer sub.Close()
		keep := time.NewTicker(15 * time.Second)
		defer keep.Stop()
		if _, err := w.WriteString(": connected\n\n"); err != nil || w.Flush() != nil {
			return
		}
		for {
			select {
			case e, ok := <-sub.C:
				if !ok {
					return
				}
				if !p.Admin && !contains(e.Users, p.UserID) {
					continue
				}
				data, _ := json.Marshal(e)
				fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, data)
			case <-keep.C:
				w.WriteString(": keepalive\n\n")
			}
			if w.Flush() != nil {
				return
			}
		}
	})
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
