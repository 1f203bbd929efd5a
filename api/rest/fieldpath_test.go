package rest

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/cluster/directory"
	pb "github.com/switchboard/switchboard/proto"
)

// pathProbe has the shapes of the API's bodies: scalars, arrays, a map of
// arrays of arrays (business hours) and a nested object.
type pathProbe struct {
	ID            string          `json:"id"`
	Name          string          `json:"name"`
	Numbers       []string        `json:"numbers"`
	PowerPack     bool            `json:"power_pack"`
	BusinessHours directory.Hours `json:"business_hours"`
	Privileges    *[]string       `json:"privileges"`
	Order         *int            `json:"order"`
	Nested        struct {
		Limit int `json:"limit"`
	} `json:"nested"`
}

func TestDecodeNamesTheWrongValue(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`{"numbers":[1]}`, "numbers[0]: must be a string."},
		{`{"numbers":["+14155550101", true]}`, "numbers[1]: must be a string."},
		{`{"numbers":"+14155550101"}`, "numbers: must be an array."},
		{`{"numbers":{"a":1}}`, "numbers: must be an array."},
		{`{"business_hours":{"mon":"all day"}}`, "business_hours.mon: must be an array."},
		{`{"business_hours":{"tue":[], "mon":[["08:00", 17]]}}`, "business_hours.mon[0][1]: must be a string."},
		{`{"business_hours":{"mon":[[],["08:00",{"h":8}]]}}`, "business_hours.mon[1][1]: must be a string."},
		{`{"business_hours":[]}`, "business_hours: must be an object."},
		{`{"name":"x","privileges":["a",["b"]]}`, "privileges[1]: must be a string."},
		{`{"order":"1"}`, "order: must be an integer."},
		{`{"order":1.5}`, "order: must be an integer."},
		{` { "nested" : { "limit" : [ 1 ] } } `, "nested.limit: must be an integer."},
		{`{"power_pack":"yes"}`, "power_pack: must be true or false."},
		// encoding/json matches names regardless of case: the answer
		// names the field as the client wrote it.
		{`{"Power_Pack":1}`, "Power_Pack: must be true or false."},
		{`{"id":"a","id":2}`, "id: must be a string."},
	} {
		var v pathProbe
		err := decode([]byte(c.body), &v)
		var ae *apiError
		if !errors.As(err, &ae) || ae.code != "invalid_field" || ae.message != c.want {
			t.Errorf("%s: got %v, want invalid_field %q", c.body, err, c.want)
		}
	}
}

var indexRe = regexp.MustCompile(`\[[0-9]+\]`)

// FuzzFieldPath: for any body encoding/json refuses for a wrong type,
// fieldPath names a value, and the path agrees with the names
// encoding/json reports (which leave out indexes and map keys).
//
//	go test -run '^$' -fuzz FuzzFieldPath -fuzztime 30s ./api/rest/
func FuzzFieldPath(f *testing.F) {
	for _, seed := range []string{
		`{"numbers":[1]}`, `{"business_hours":{"mon":[["08:00",17]]}}`, `{"nested":{"limit":"x"}}`,
		`{"privileges":[null,2]}`, `{"id":{}}`, `{"business_hours":{"a.b":[[1]]}}`, `[1]`, `"x"`, `{"order":-1e400}`,
		` {"name" :  7 , "numbers": [ "a" , [ ] ] } `, `{"ID":1}`, `{"business_hours":{"mon":[["a","b"],7]}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var v pathProbe
		var te *json.UnmarshalTypeError
		if err := json.Unmarshal([]byte(body), &v); !errors.As(err, &te) {
			return
		}
		path := fieldPath([]byte(body), te.Offset)
		keys := strings.ToLower(indexRe.ReplaceAllString(path, ""))
		field := strings.ToLower(te.Field)
		if keys != field && !strings.HasPrefix(keys, field+".") {
			t.Fatalf("%q: path %q, encoding/json says %q", body, path, te.Field)
		}
		if te.Field != "" && path == "" {
			t.Fatalf("%q: no path for %q", body, te.Field)
		}
	})
}

// refusingDelegation answers every command with one refusal.
type refusingDelegation struct {
	fakeDelegation
	res *pb.DelegatorResult
}

func (d *refusingDelegation) Command(context.Context, *pb.DelegatorCommand) (*pb.DelegatorResult, error) {
	return d.res, nil
}

// A grain's message reaches the client with its field names and user ids
// as written; only the call grain's lower-case sentences get a capital.
func TestGrainMessagesKeepNames(t *testing.T) {
	e := newEnv(t)
	d := &refusingDelegation{}
	e.deps.Delegation = d
	e.app = New(e.deps, testLog())
	e.user("alice", "1001")
	for _, c := range []struct {
		status      int32
		code, grain string
		want        string
	}{
		{400, "invalid_field", "ring_seconds: must be from 5 to 120.", "ring_seconds: must be from 5 to 120."},
		{400, "invalid_field", `privileges[1]: "fly" is not a privilege`, `privileges[1]: "fly" is not a privilege.`},
		{409, "already_delegate", "bob is already invited to this line.", "bob is already invited to this line."},
		{422, "needs_answering_delegate", `vip_mode "me_then_delegates" rings delegates`, `vip_mode "me_then_delegates" rings delegates.`},
	} {
		d.res = &pb.DelegatorResult{Status: c.status, Code: c.code, Message: c.grain}
		r := e.do("PUT", "/v1/users/alice/vip", adminTok, `{}`)
		if code, msg := r.errCode(); r.status != int(c.status) || code != c.code || msg != c.want {
			t.Errorf("grain says %q: got %d %s %q, want %q", c.grain, r.status, code, msg, c.want)
		}
	}
	for _, c := range []struct{ grain, want string }{
		{"to: \"9999\" is neither a user nor a number that can be called", "to: \"9999\" is neither a user nor a number that can be called."},
		{"from_user has no registered device to ring", "from_user has no registered device to ring."},
		{"from_user's phones cannot be looked up now; try again", "from_user's phones cannot be looked up now; try again."},
		{"the call is not on hold", "The call is not on hold."},
		{"only a party to the call or an admin may control it", "Only a party to the call or an admin may control it."},
		{"", ""},
	} {
		if got := sentence(c.grain); got != c.want {
			t.Errorf("sentence(%q) = %q, want %q", c.grain, got, c.want)
		}
	}
}
