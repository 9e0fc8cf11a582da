// Package netpol decides whether policy lets a connection through: NetworkPolicy v1, AdminNetworkPolicy and BaselineAdminNetworkPolicy (v1alpha1) and ClusterNetworkPolicy (v1alpha2), evaluated in tier order with the exact rule and a reason for every verdict.
package netpol
