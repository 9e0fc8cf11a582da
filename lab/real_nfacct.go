package lab

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// nfnetlink_acct (linux/netfilter/nfnetlink_acct.h): the extended accounting objects `-m nfacct` names.
const (
	nfnlSubsysAcct = 7 // NFNL_SUBSYS_ACCT
	nfnlMsgAcctNew = 0 // NFNL_MSG_ACCT_NEW
	nfacctName     = 1 // NFACCT_NAME
)

// kubeProxyNFAcct are the counters kube-proxy's iptables rules name (it creates them over netlink at start).
var kubeProxyNFAcct = []string{"ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts"}

// ensureNFAcct creates nfacct objects in a namespace (they are per network namespace), as kube-proxy does, so a
// rendered ruleset naming them can be loaded there. An existing object is left as it is (the kernel answers EEXIST,
// or EBUSY when a rule uses it).
func ensureNFAcct(ns string, names []string) error {
	return inNetns(ns, func() error {
		for _, name := range names {
			req := nl.NewNetlinkRequest(nfnlSubsysAcct<<8|nfnlMsgAcctNew, unix.NLM_F_CREATE|unix.NLM_F_ACK)
			req.AddData(&nl.Nfgenmsg{NfgenFamily: unix.AF_UNSPEC, Version: nl.NFNETLINK_V0})
			req.AddData(nl.NewRtAttr(nfacctName, nl.ZeroTerminated(name)))
			if _, err := req.Execute(unix.NETLINK_NETFILTER, 0); err != nil && !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.EBUSY) {
				// EBUSY: it exists and a loaded rule uses it (the kernel does not replace it then).
				return fmt.Errorf("creating nfacct object %s in %s: %w", name, ns, err)
			}
		}
		return nil
	})
}
