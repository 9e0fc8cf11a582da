package lab

import "k8s.io/apimachinery/pkg/labels"

func mustSelector(s string) labels.Selector {
	sel, err := labels.Parse(s)
	if err != nil {
		panic(err)
	}
	return sel
}
