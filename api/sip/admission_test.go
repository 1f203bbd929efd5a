package sipedge

import (
	"fmt"
	"testing"
)

func TestAdmissionShedsPastTheLimitAndRecovers(t *testing.T) {
	a := newAdmission(3)
	for i := range 3 {
		if !a.admit(fmt.Sprint(i)) {
			t.Fatalf("call %d refused under the limit", i)
		}
	}
	if a.admit("3") {
		t.Fatal("a fourth waiting call was admitted")
	}
	a.routed("1")
	a.routed("1") // twice (respond, then end) is harmless
	if !a.admit("4") {
		t.Fatal("a call was refused after one was routed")
	}
	if a.admit("5") {
		t.Fatal("the limit did not hold after recovering")
	}
}
