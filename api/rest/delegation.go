package rest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/cluster/directory"

	pb "github.com/switchboard/switchboard/proto"
)

// Delegation carries delegation requests to the delegator grains, which
// decide them, and reads the lines a user sees.
type Delegation interface {
	Command(ctx context.Context, cmd *pb.DelegatorCommand) (*pb.DelegatorResult, error)
	Lines(ctx context.Context, user string) ([]Line, error)
	// Shared is the ids of the delegators' lines user accepted to share.
	Shared(ctx context.Context, user string) ([]string, error)
}

// Line is a line as openapi.json shows it.
type Line struct {
	ID        string     `json:"id"`
	Owner     string     `json:"owner"`
	Extension string     `json:"extension"`
	Number    string     `json:"number"`
	Kind      string     `json:"kind"`
	Calls     []LineCall `json:"calls"`
}

// LineCall is one call on a line.
type LineCall struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Peer   string `json:"peer"`
	Locked bool   `json:"locked"`
}

// Bodies, read strictly so a wrong field is a 400 naming it; the grain
// applies the rules.
type (
	inviteBody struct {
		Delegate   *string   `json:"delegate"`
		Privileges *[]string `json:"privileges"`
		Order      *int      `json:"order"`
	}
	delegationPatch struct {
		Privileges *[]string `json:"privileges"`
		Order      *int      `json:"order"`
	}
	vipBody struct {
		Enabled       bool   `json:"enabled"`
		VIPMode       string `json:"vip_mode"`
		EverybodyElse string `json:"everybody_else"`
		RingSeconds   int    `json:"ring_seconds"`
	}
	contactBody struct {
		Contact *string `json:"contact"`
	}
	privacyBody struct {
		JoinChime bool `json:"join_chime"`
	}
)

func (a *api) delegationRoutes(v1 fiber.Router) {
	v1.Post("/users/:id/delegates", a.knownUser, a.invite)
	v1.Get("/users/:id/delegates", a.knownUser, a.delegate("list", ""))
	v1.Patch("/users/:id/delegates/:delegate", a.knownUser, a.patchDelegate)
	v1.Delete("/users/:id/delegates/:delegate", a.knownUser, a.delegate("remove", "delegate"))
	for path, action := range map[string]string{"accept": "accept", "decline": "decline", "opt-in": "opt_in", "opt-out": "opt_out"} {
		v1.Post("/users/:id/delegations/:delegator/"+path, a.knownUser, a.respondDelegation(action))
	}
	v1.Get("/users/:id/vip", a.knownUser, a.delegate("get_vip", ""))
	v1.Put("/users/:id/vip", a.knownUser, a.putVIP)
	v1.Post("/users/:id/vip/contacts", a.knownUser, a.addContact)
	v1.Delete("/users/:id/vip/contacts/:contact", a.knownUser, a.delegate("remove_contact", "contact"))
	v1.Get("/users/:id/privacy", a.knownUser, a.delegate("get_privacy", ""))
	v1.Put("/users/:id/privacy", a.knownUser, a.putPrivacy)
	v1.Get("/users/:id/lines", a.selfOrAdmin, a.knownUser, a.lines)
}

func (a *api) knownUser(c *fiber.Ctx) error {
	if _, ok := a.d.Directory.UserByID(c.Params("id")); !ok {
		return notFound("The user")
	}
	return c.Next()
}

// run sends a command for the delegator in :id and writes the grain's answer.
func (a *api) run(c *fiber.Ctx, cmd *pb.DelegatorCommand) error {
	p := principal(c)
	cmd.ByUser, cmd.Admin = p.UserID, p.Admin
	res, err := a.d.Delegation.Command(c.UserContext(), cmd)
	if err != nil {
		return fmt.Errorf("delegation %s on %s: %w", cmd.Action, cmd.Delegator, err)
	}
	if res.Status >= 300 {
		return &apiError{int(res.Status), res.Code, fullStop(res.Message)}
	}
	if res.Status == fiber.StatusNoContent || len(res.Body) == 0 {
		return c.SendStatus(int(res.Status))
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(int(res.Status)).Send(res.Body)
}

// delegate builds a handler with no body; param names the path parameter
// that is the command's subject.
func (a *api) delegate(action, param string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		cmd := &pb.DelegatorCommand{Delegator: c.Params("id"), Action: action}
		if param != "" {
			v, err := url.PathUnescape(c.Params(param))
			if err != nil {
				return bad("invalid_field", param+": is not a valid path segment.")
			}
			cmd.Delegate = v
		}
		return a.run(c, cmd)
	}
}

func (a *api) invite(c *fiber.Ctx) error {
	var in inviteBody
	if err := jsonBody(c, &in); err != nil {
		return err
	}
	switch {
	case in.Delegate == nil || *in.Delegate == "":
		return bad("invalid_field", "delegate: is required (a user id).")
	case in.Privileges == nil:
		return bad("invalid_field", "privileges: is required (a list, possibly empty).")
	}
	order := 0
	if in.Order != nil {
		order = *in.Order
	}
	body, _ := json.Marshal(map[string]any{"delegate": *in.Delegate, "privileges": *in.Privileges, "order": order})
	return a.run(c, &pb.DelegatorCommand{Delegator: c.Params("id"), Action: "invite", Delegate: *in.Delegate, Body: body})
}

func (a *api) patchDelegate(c *fiber.Ctx) error {
	var in delegationPatch
	if err := jsonBody(c, &in); err != nil {
		return err
	}
	body, _ := json.Marshal(in)
	return a.run(c, &pb.DelegatorCommand{Delegator: c.Params("id"), Action: "update", Delegate: c.Params("delegate"), Body: body})
}

// respondDelegation is the delegate (:id) answering :delegator.
func (a *api) respondDelegation(action string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if _, ok := a.d.Directory.UserByID(c.Params("delegator")); !ok {
			return notFound("The delegator")
		}
		return a.run(c, &pb.DelegatorCommand{Delegator: c.Params("delegator"), Action: action, Delegate: c.Params("id")})
	}
}

func (a *api) putVIP(c *fiber.Ctx) error {
	var in vipBody
	if err := jsonBody(c, &in); err != nil {
		return err
	}
	body, _ := json.Marshal(in)
	return a.run(c, &pb.DelegatorCommand{Delegator: c.Params("id"), Action: "put_vip", Body: body})
}

// putPrivacy replaces the delegator's privacy settings (missing fields
// take their defaults, as for VIP).
func (a *api) putPrivacy(c *fiber.Ctx) error {
	var in privacyBody
	if err := jsonBody(c, &in); err != nil {
		return err
	}
	body, _ := json.Marshal(in)
	return a.run(c, &pb.DelegatorCommand{Delegator: c.Params("id"), Action: "put_privacy", Body: body})
}

func (a *api) addContact(c *fiber.Ctx) error {
	var in contactBody
	if err := jsonBody(c, &in); err != nil {
		return err
	}
	if in.Contact == nil || *in.Contact == "" {
		return bad("invalid_field", "contact: is required (a user id or an E.164 number).")
	}
	if _, ok := a.d.Directory.UserByID(*in.Contact); !ok && !directory.IsE164(*in.Contact) {
		return bad("invalid_field", "contact: must be a user id or an E.164 number such as +14155550100.")
	}
	body, _ := json.Marshal(map[string]string{"contact": *in.Contact})
	return a.run(c, &pb.DelegatorCommand{Delegator: c.Params("id"), Action: "add_contact", Body: body})
}

func (a *api) lines(c *fiber.Ctx) error {
	ls, err := a.d.Delegation.Lines(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return list(c, ls, "")
}

// fullStop ends a grain's message as the API's other messages end. The
// delegator writes its messages as the client reads them (a field name or
// a user id first stays as it is), so nothing else is changed.
func fullStop(s string) string {
	if s == "" {
		return s
	}
	if last := s[len(s)-1]; last != '.' && last != '!' && last != '?' {
		s += "."
	}
	return s
}

// sentence makes a call grain's message, written in lower case, read as
// the API's other messages do. A first word that is not a plain word is a
// field name ("to: ...", "from_user has ...") and stays as the client
// sends it.
func sentence(s string) string {
	word, _, _ := strings.Cut(s, " ")
	if word != "" && strings.Trim(word, "abcdefghijklmnopqrstuvwxyz") == "" {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	return fullStop(s)
}
