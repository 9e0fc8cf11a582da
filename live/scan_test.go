package live

import "testing"

func TestScanPage(t *testing.T) {
	cases := []struct {
		name, page string
		items      int
		cont       string
		bad        bool
	}{
		{"a typed list page gives its continue token and item count",
			`{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9","continue":"abc"},"items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b,}]"}}]}`, 2, "abc", false},
		{"the last page has no continue token", `{"kind":"PodList","metadata":{"resourceVersion":"9"},"items":[{}]}`, 1, "", false},
		{"metadata after items is still found", `{"items":[[1,2],{"a":"\"}"}],"metadata":{"continue":"x"}}`, 2, "x", false},
		{"an empty list", `{"kind":"ServiceList","metadata":{},"items":[]}`, 0, "", false},
		{"null items", `{"kind":"ServiceList","metadata":{},"items":null}`, 0, "", false},
		{"a truncated response is an error", `{"kind":"PodList","items":[{"a":1}`, 0, "", true},
		{"a non-object is an error", `[1,2]`, 0, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pi, err := scanPage([]byte(c.page))
			if (err != nil) != c.bad {
				t.Fatalf("err = %v, want error %v", err, c.bad)
			}
			if c.bad {
				return
			}
			if pi.items != c.items || pi.meta.Continue != c.cont {
				t.Errorf("got %d items, continue %q; want %d, %q", pi.items, pi.meta.Continue, c.items, c.cont)
			}
		})
	}
}
