package localfw

import (
	"slices"
	"testing"
)

func TestParseSS(t *testing.T) {
	out := "LISTEN 0      100          0.0.0.0:25        0.0.0.0:*\n" +
		"LISTEN 0      100             [::]:587          [::]:*\n" +
		"LISTEN 0      4096   127.0.0.53%lo:53        0.0.0.0:*\n" +
		"LISTEN 0      100             [::]:25           [::]:*\n\n"
	if got := parseSS([]byte(out)); !slices.Equal(got, []int{25, 53, 587}) {
		t.Errorf("parseSS = %v", got)
	}
}
