// Command kpath explains the life of a packet in a Kubernetes cluster.
package main

import (
	"os"

	"github.com/kpath/kpath/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
