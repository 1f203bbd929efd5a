package rest

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/actors/delegator"
	"github.com/switchboard/switchboard/actors/hours"
	"github.com/switchboard/switchboard/cluster/directory"
	"github.com/switchboard/switchboard/cluster/history"
)

// doc is the embedded OpenAPI document as generic JSON.
type doc map[string]any

func loadDoc(t *testing.T) doc {
	t.Helper()
	var d doc
	dec := json.NewDecoder(bytes.NewReader(openAPI))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	return d
}

// httpMethods are the operation keys of an OpenAPI path item.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// operation is one documented method and path, as "POST /v1/users/{id}".
type operation struct {
	method, path string
	op           map[string]any
	item         map[string]any // the path item, for its parameters
}

func (d doc) operations(t *testing.T) []operation {
	t.Helper()
	paths, ok := d["paths"].(map[string]any)
	if !ok || len(paths) == 0 {
		t.Fatal("openapi.json has no paths")
	}
	var ops []operation
	for path, v := range paths {
		item, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("path %s is not an object", path)
		}
		for key, v := range item {
			if !slices.Contains(httpMethods, key) {
				continue
			}
			op, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%s %s is not an object", key, path)
			}
			ops = append(ops, operation{strings.ToUpper(key), path, op, item})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].path+ops[i].method < ops[j].path+ops[j].method })
	return ops
}

// resolve follows a local "$ref" (JSON pointer into the document).
func (d doc) resolve(t *testing.T, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v is not an object", v)
	}
	ref, ok := m["$ref"].(string)
	if !ok {
		return m
	}
	if !strings.HasPrefix(ref, "#/") {
		t.Fatalf("$ref %q is not local", ref)
	}
	var cur any = map[string]any(d)
	for _, part := range strings.Split(ref[2:], "/") {
		part = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
		next, ok := cur.(map[string]any)[part]
		if !ok {
			t.Fatalf("$ref %q does not resolve", ref)
		}
		cur = next
	}
	return d.resolve(t, cur)
}

// fiberParam is a fiber path parameter (":id").
var fiberParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// The router and the reference list the same routes, both ways.
func TestOpenAPIRoutes(t *testing.T) {
	e := newEnv(t)
	routed := map[string]bool{}
	for _, r := range e.app.GetRoutes(true) { // true: without app.Use middleware
		if r.Method == fiber.MethodHead {
			continue // fiber adds a HEAD beside every GET
		}
		routed[r.Method+" "+fiberParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	documented := map[string]bool{}
	for _, op := range loadDoc(t).operations(t) {
		documented[op.method+" "+op.path] = true
	}
	if len(routed) < 40 {
		t.Fatalf("only %d routes found: %v", len(routed), routed)
	}
	for r := range routed {
		if !documented[r] {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for r := range documented {
		if !routed[r] {
			t.Errorf("openapi.json documents %s, which the router does not have", r)
		}
	}
}

// The document is an OpenAPI 3 document whose every operation is complete:
// an id, responses, its path's parameters declared, references that resolve,
// and a token required everywhere but the public endpoints.
func TestOpenAPIDocument(t *testing.T) {
	d := loadDoc(t)
	if v, _ := d["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("openapi version %q", v)
	}
	info, _ := d["info"].(map[string]any)
	if title, _ := info["title"].(string); title == "" {
		t.Error("info.title is empty")
	}
	if version, _ := info["version"].(string); version == "" {
		t.Error("info.version is empty")
	}
	bearer := d.resolve(t, map[string]any{"$ref": "#/components/securitySchemes/bearer"})
	if bearer["type"] != "http" || bearer["scheme"] != "bearer" {
		t.Errorf("bearer scheme: %v", bearer)
	}
	if sec, _ := json.Marshal(d["security"]); string(sec) != `[{"bearer":[]}]` {
		t.Errorf("top-level security %s, want bearer", sec)
	}
	public := []string{"/healthz", "/readyz", "/metrics", "/v1/openapi.json"}

	ids := map[string]string{}
	for _, o := range d.operations(t) {
		name := o.method + " " + o.path
		id, _ := o.op["operationId"].(string)
		if id == "" {
			t.Errorf("%s has no operationId", name)
		} else if other, dup := ids[id]; dup {
			t.Errorf("%s and %s share operationId %s", name, other, id)
		}
		ids[id] = name

		responses, _ := o.op["responses"].(map[string]any)
		if len(responses) == 0 {
			t.Errorf("%s has no responses", name)
		}
		for status, r := range responses {
			if desc, _ := d.resolve(t, r)["description"].(string); desc == "" {
				t.Errorf("%s response %s has no description", name, status)
			}
		}

		sec, isSet := o.op["security"]
		switch {
		case slices.Contains(public, o.path) && (!isSet || len(sec.([]any)) != 0):
			t.Errorf("%s is public but its security is %v", name, sec)
		case !slices.Contains(public, o.path) && isSet:
			t.Errorf("%s overrides the bearer security: %v", name, sec)
		case !slices.Contains(public, o.path) && responses["401"] == nil:
			t.Errorf("%s needs a token but documents no 401", name)
		}

		// Every {param} of the path is declared, and nothing else in the path.
		declared := map[string]bool{}
		for _, list := range []any{o.item["parameters"], o.op["parameters"]} {
			ps, _ := list.([]any)
			for _, p := range ps {
				p := d.resolve(t, p)
				if p["in"] == "path" {
					if p["required"] != true {
						t.Errorf("%s: path parameter %v is not required", name, p["name"])
					}
					declared[p["name"].(string)] = true
				}
			}
		}
		for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(o.path, -1) {
			if !declared[m[1]] {
				t.Errorf("%s: path parameter %s is not declared", name, m[1])
			}
			delete(declared, m[1])
		}
		for p := range declared {
			t.Errorf("%s declares path parameter %s, which is not in the path", name, p)
		}

		if rb, ok := o.op["requestBody"]; ok {
			if _, ok := d.resolve(t, rb)["content"].(map[string]any)[fiber.MIMEApplicationJSON]; !ok {
				t.Errorf("%s: its request body is not application/json", name)
			}
			if responses["415"] == nil {
				t.Errorf("%s takes a body but documents no 415", name)
			}
		}
	}

	// Every reference anywhere resolves.
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["$ref"]; ok {
				d.resolve(t, v)
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(map[string]any(d))
}

// jsonFields are the names encoding/json uses for t's fields, embedded
// structs flattened.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case tag == "-" || !f.IsExported() && !f.Anonymous:
		case f.Anonymous && tag == "":
			out = append(out, jsonFields(f.Type)...)
		case tag != "":
			out = append(out, tag)
		default:
			out = append(out, f.Name)
		}
	}
	sort.Strings(out)
	return out
}

// properties are a schema's property names, allOf members included.
func (d doc) properties(t *testing.T, schema any) []string {
	s := d.resolve(t, schema)
	var out []string
	props, _ := s["properties"].(map[string]any)
	for name := range props {
		out = append(out, name)
	}
	all, _ := s["allOf"].([]any)
	for _, sub := range all {
		out = append(out, d.properties(t, sub)...)
	}
	sort.Strings(out)
	return out
}

// The schemas name exactly the fields the handlers read and write, so a
// field added to a body or an answer must be documented.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	d := loadDoc(t)
	for _, c := range []struct {
		schema string
		typ    any
	}{
		{"UserInput", directory.UserInput{}},
		{"UserPatch", directory.UserPatch{}},
		{"User", directory.User{}},
		{"CreatedUser", created{}},
		{"HistoryEntry", history.Entry{}},
		{"Trunk", trunkInput{}},
		{"Trunk", directory.Trunk{}},
		{"Call", Call{}},
		{"Leg", Leg{}},
		{"DialRequest", dialBody{}},
		{"Transfer", transferBody{}},
		{"Member", Member{}},
		{"Registration", Registration{}},
		{"UserRegistration", UserRegistration{}},
		{"Line", Line{}},
		{"LineCall", LineCall{}},
		{"DelegationInvite", inviteBody{}},
		{"DelegationInvite", delegator.InviteBody{}},
		{"DelegationPatch", delegationPatch{}},
		{"DelegationPatch", delegator.UpdateBody{}},
		{"Delegation", delegator.Delegation{}},
		{"VIP", vipBody{}},
		{"VIP", delegator.VIP{}},
		{"VIPView", delegator.VIPView{}},
		{"VIPContact", contactBody{}},
		{"VIPContact", delegator.ContactBody{}},
		{"Privacy", privacyBody{}},
		{"Privacy", delegator.Privacy{}},
		{"MonitoringGroup", directory.MonitoringGroup{}},
		{"MonitoringGroupInput", directory.MonitoringGroupInput{}},
		{"MonitoringGroupPatch", directory.MonitoringGroupPatch{}},
		{"Holiday", hours.Holiday{}},
		{"Target", directory.Target{}},
		{"Overflow", directory.Overflow{}},
		{"QueueMember", directory.QueueMember{}},
		{"Queue", directory.Queue{}},
		{"QueueInput", directory.QueueInput{}},
		{"QueuePatch", directory.QueuePatch{}},
		{"OptOut", optOutBody{}},
		{"SharedLineGroup", directory.SharedLineGroup{}},
		{"SharedLineGroupInput", directory.SharedLineGroupInput{}},
		{"SharedLineGroupPatch", directory.SharedLineGroupPatch{}},
		{"PickupGroup", directory.PickupGroup{}},
		{"PickupGroupInput", directory.PickupGroupInput{}},
		{"PickupGroupPatch", directory.PickupGroupPatch{}},
		{"SMSSend", smsBody{}},
		{"SMSSent", SMSSent{}},
		{"SMSReply", replyBody{}},
		{"SMSTransfer", transferBody{}},
	} {
		typ := reflect.TypeOf(c.typ)
		got := d.properties(t, map[string]any{"$ref": "#/components/schemas/" + c.schema})
		if want := jsonFields(typ); !slices.Equal(got, want) {
			t.Errorf("schema %s has %v, %v has %v", c.schema, got, typ, want)
		}
	}
}

// The reference is served as is, to anyone.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	for _, tok := range []string{"", "not-a-token", adminTok} {
		req := httptest.NewRequest("GET", "/v1/openapi.json", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := e.app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != fiber.MIMEApplicationJSON || !bytes.Equal(body.Bytes(), openAPI) {
			t.Errorf("token %q: %d %s, %d bytes", tok, res.StatusCode, res.Header.Get("Content-Type"), body.Len())
		}
	}
}
