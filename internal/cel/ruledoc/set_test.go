package ruledoc

import (
	"reflect"
	"testing"
)

type color string

func TestBits(t *testing.T) {
	known := []color{"red", "green", "blue"}
	type set uint8
	if Bit[set](known, "red") != 1 || Bit[set](known, "blue") != 4 || Bit[set](known, "pink") != 0 {
		t.Error("Bit")
	}
	s := BitsOf[set](known, "blue", "red", "pink")
	if s != 5 {
		t.Errorf("BitsOf = %b", s)
	}
	if all := AllBits[set](known); all != 7 {
		t.Errorf("AllBits = %b", all)
	}
	if got := Members(known, s); !reflect.DeepEqual(got, []color{"red", "blue"}) {
		t.Errorf("Members = %v", got)
	}
	if got := Names(known, s); !reflect.DeepEqual(got, []string{"red", "blue"}) {
		t.Errorf("Names = %v", got)
	}
	if Names(known, set(0)) != nil || Members(known, set(0)) != nil {
		t.Error("the empty set has members")
	}
	// A wide type over a long list.
	long := make([]int, 64)
	for i := range long {
		long[i] = i * 10
	}
	if Bit[uint64](long, 630) != 1<<63 || AllBits[uint64](long) != ^uint64(0) {
		t.Error("64-item list")
	}
}
