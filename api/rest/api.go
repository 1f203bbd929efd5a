// Package rest is the REST API (fiber): it authenticates, validates, and
// turns requests into directory writes or commands to grains. It holds no
// business rules: the grains answer whether an action is allowed.
package rest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard/switchboard/cluster/metrics"
)

const (
	// BodyLimit bounds a request body; the largest real one (a user with
	// its numbers and business hours) is a few kilobytes.
	BodyLimit = 64 << 10
	// requestTimeout bounds the etcd and grain work of one request.
	requestTimeout = 10 * time.Second
	maxPage        = 500
)

type api struct {
	d   Deps
	log *slog.Logger
}

// New builds the app. Serve it with Serve; app.ShutdownWithTimeout also
// ends open event streams.
func New(d Deps, log *slog.Logger) *fiber.App {
	a := &api{d: d, log: log.With("component", "rest")}
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		BodyLimit:             BodyLimit,
		ReadTimeout:           10 * time.Second,
		IdleTimeout:           60 * time.Second,
		// Handlers hand strings from the request to the directory, which
		// may keep them: fasthttp's zero-copy buffers would be reused.
		Immutable:    true,
		ErrorHandler: a.errorHandler,
	})
	app.Use(recover.New())
	app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Get("/readyz", a.readyz)
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{})))
	// Before the group, so the reference is public.
	app.Get("/v1/openapi.json", serveOpenAPI)

	v1 := app.Group("/v1", a.auth)
	v1.Post("/users", a.admin, a.createUser)
	v1.Get("/users", a.admin, a.listUsers)
	v1.Get("/users/:id", a.selfOrAdmin, a.getUser)
	v1.Patch("/users/:id", a.selfOrAdmin, a.patchUser)
	v1.Delete("/users/:id", a.admin, a.deleteUser)
	v1.Post("/users/:id/token", a.admin, a.reissueToken)
	v1.Get("/users/:id/history", a.selfOrAdmin, a.listHistory)
	v1.Delete("/users/:id/history/:entry", a.selfOrAdmin, a.deleteHistory)
	v1.Get("/users/:id/registrations", a.selfOrAdmin, a.knownUser, a.userRegistrations)
	v1.Get("/registrations", a.admin, a.allRegistrations)
	v1.Post("/trunks", a.admin, a.createTrunk)
	v1.Get("/trunks", a.admin, a.listTrunks)
	v1.Get("/trunks/:id", a.admin, a.getTrunk)
	v1.Delete("/trunks/:id", a.admin, a.deleteTrunk)
	v1.Get("/calls", a.listCalls)
	v1.Post("/calls", a.dial)
	v1.Get("/calls/:id", a.getCall)
	for _, action := range []string{"hold", "resume", "hangup", "pickup", "join", "lock", "unlock", "transfer"} {
		v1.Post("/calls/:id/"+action, a.control(action))
	}
	a.monitorRoutes(v1)
	a.delegationRoutes(v1)
	a.monitoringGroupRoutes(v1)
	a.queueRoutes(v1)
	a.sharedLineGroupRoutes(v1)
	a.pickupGroupRoutes(v1)
	a.smsRoutes(v1)
	v1.Get("/cluster", a.admin, a.cluster)
	v1.Get("/events", a.events)
	app.Use(func(c *fiber.Ctx) error {
		return fail(c, fiber.StatusNotFound, "not_found", fmt.Sprintf("There is no route %s %s.", c.Method(), c.Path()))
	})
	return app
}

// fail writes the error shape of openapi.json.
func fail(c *fiber.Ctx, status int, code, msg string) error {
	return c.Status(status).JSON(fiber.Map{"error": fiber.Map{"code": code, "message": msg}})
}

// apiError is an answer decided by a helper; the error handler writes it.
type apiError struct {
	status        int
	code, message string
}

func (e *apiError) Error() string { return e.message }

// heldError is a refusal that names who holds what was asked for (a Team
// SMS thread claimed by another member): the error object gets "holder".
type heldError struct {
	apiError
	holder string
}

func bad(code, msg string) error { return &apiError{fiber.StatusBadRequest, code, msg} }

func notFound(what string) error {
	return &apiError{fiber.StatusNotFound, "not_found", what + " was not found."}
}

func forbidden(msg string) error { return &apiError{fiber.StatusForbidden, "forbidden", msg} }

func (a *api) errorHandler(c *fiber.Ctx, err error) error {
	var he *heldError
	if errors.As(err, &he) {
		return c.Status(he.status).JSON(fiber.Map{"error": fiber.Map{"code": he.code, "message": he.message, "holder": he.holder}})
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return fail(c, ae.status, ae.code, ae.message)
	}
	var fe *fiber.Error
	if errors.As(err, &fe) && fe.Code < 500 {
		// Raised by fiber itself: 413 body too large, 405, ...
		if fe.Code == fiber.StatusRequestEntityTooLarge || fe.Code == fiber.StatusRequestHeaderFieldsTooLarge {
			lingerOnClose(c) // answered before the request was read whole
		}
		code := strings.ToLower(strings.NewReplacer(" ", "_", "-", "_").Replace(fe.Message))
		return fail(c, fe.Code, code, fe.Message+".")
	}
	a.log.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
	return fail(c, fiber.StatusInternalServerError, "internal", "The server could not complete the request.")
}

func (a *api) readyz(c *fiber.Ctx) error {
	if a.d.Ready != nil {
		if err := a.d.Ready(); err != nil {
			return fail(c, fiber.StatusServiceUnavailable, "not_ready", err.Error())
		}
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// ---- auth ------------------------------------------------------------------

// auth checks the token before the guard's block: a valid token is served
// whatever its source, so that behind a reverse proxy, where every client
// shares one address, a client guessing tokens does not lock the others
// out. A valid token from a guessing source is no successful guess: tokens
// are random values of 192 bits (the generated admin token) or more.
func (a *api) auth(c *fiber.Ctx) error {
	scheme, tok, _ := strings.Cut(c.Get(fiber.HeaderAuthorization), " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return fail(c, fiber.StatusUnauthorized, "unauthorized", "An Authorization: Bearer <token> header is required.")
	}
	src := source(c)
	wait, blocked := a.d.Guard.Blocked(src)
	p, ok := a.token(tok, blocked)
	switch {
	case !ok && blocked:
		return a.refuse(c, src, wait)
	case !ok:
		a.tokenFailed(c, src)
		return fail(c, fiber.StatusUnauthorized, "unauthorized", "The token is not valid.")
	}
	c.Locals(principalKey{}, p)
	ctx, cancel := context.WithTimeout(c.UserContext(), requestTimeout)
	defer cancel()
	c.SetUserContext(ctx)
	return c.Next()
}

// token finds who tok is. For a blocked source only the directory's cache
// is asked: a guess must not cost an etcd read each, at the price of
// missing a token issued on another node a moment ago.
func (a *api) token(tok string, cacheOnly bool) (Principal, bool) {
	if a.d.AdminToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(a.d.AdminToken)) == 1 {
		return Principal{Admin: true}, true
	}
	look := a.d.Directory.UserByToken
	if cacheOnly {
		look = a.d.Directory.CachedUserByToken
	}
	u, ok := look(tok)
	return Principal{UserID: u.ID}, ok
}

type principalKey struct{}

func principal(c *fiber.Ctx) Principal {
	p, _ := c.Locals(principalKey{}).(Principal)
	return p
}

func (a *api) admin(c *fiber.Ctx) error {
	if !principal(c).Admin {
		return forbidden("This needs the admin token.")
	}
	return c.Next()
}

func (a *api) selfOrAdmin(c *fiber.Ctx) error {
	p := principal(c)
	if !p.Admin && p.UserID != c.Params("id") {
		return forbidden("A user token may act only on its own user.")
	}
	return c.Next()
}

// ---- input -----------------------------------------------------------------

// decode reads a JSON object body strictly: malformed JSON, unknown fields
// and wrong types are 400s that name what could not be read.
func decode(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return bad("invalid_json", "The request body must be a JSON object.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			field := fieldPath(body, te.Offset)
			if field == "" {
				field = te.Field
			}
			return bad("invalid_field", fmt.Sprintf("%s: must be %s.", field, jsonKind(te.Type)))
		case errors.As(err, &se):
			return bad("invalid_json", fmt.Sprintf("The body is not valid JSON: %s (at byte %d).", se.Error(), se.Offset))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
			return bad("unknown_field", fmt.Sprintf("%s: is not a known field.", field))
		default:
			return bad("invalid_json", "The body could not be read as JSON: "+strings.TrimPrefix(err.Error(), "json: ")+".")
		}
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return bad("invalid_json", "The body has data after the JSON object.")
	}
	return nil
}

// jsonKind names a Go type the way a JSON client thinks of it.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "an object"
}

// page reads ?limit= and ?cursor=.
func page(c *fiber.Ctx) (cursor string, limit int, err error) {
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPage {
			return "", 0, bad("invalid_field", fmt.Sprintf("limit: must be a whole number from 1 to %d.", maxPage))
		}
		limit = n
	}
	return c.Query("cursor"), limit, nil
}

// list writes the list shape of openapi.json; items is never null.
func list[T any](c *fiber.Ctx, items []T, next string) error {
	if items == nil {
		items = []T{}
	}
	return c.JSON(fiber.Map{"items": items, "next": next})
}
