package reach

import (
	"testing"

	"github.com/kpath/kpath/netpol"
)

func TestCheckIntents(t *testing.T) {
	s := demoSnapshot(t)
	e := netpol.New(s)
	for _, c := range []struct {
		name, yaml string
		violations int
	}{
		{"frontend reaching cart on 8080 holds", "intents:\n- {from: shop/frontend, to: shop/cart, port: 8080, expect: allowed}\n", 0},
		{"checkout reaching cart is the demo's gap and is reported", "intents:\n- {from: shop/checkout, to: shop/cart, port: 8080, expect: allowed}\n", 1},
		{"only cart and adminer reach db, with a wildcard and except", "intents:\n- {from: '*', to: shop/db, port: 5432, expect: denied, except: [shop/cart, shop/adminer]}\n", 0},
		{"a namespace wildcard expands to every workload in it", "intents:\n- {from: 'tools/*', to: shop/db, port: 5432, expect: allowed}\n", 1},
		{"DNS is reachable from every namespace", "intents:\n- dns: true\n", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			in, err := ParseIntents([]byte(c.yaml))
			if err != nil {
				t.Fatal(err)
			}
			r := Check(e, in)
			if len(r.Violations) != c.violations {
				t.Errorf("got %d violations, want %d: %+v", len(r.Violations), c.violations, r.Violations)
			}
			if r.Checked == 0 {
				t.Errorf("no pair checked")
			}
		})
	}
	for _, bad := range []string{"intents:\n- {from: a/b, to: c/d, expect: maybe}\n", "intents:\n- {from: a/b, expect: allowed}\n", "intents:\n- {from: a/b, to: c/d, expect: allowed, protocol: ICMP}\n", "nope: 1\n"} {
		if _, err := ParseIntents([]byte(bad)); err == nil {
			t.Errorf("ParseIntents(%q): want an error", bad)
		}
	}
}
