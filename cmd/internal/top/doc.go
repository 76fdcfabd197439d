// Package top is the live view of a running qos daemon behind `qos-cli
// top`: it scrapes the daemon's Prometheus page (--metrics-addr), turns two
// successive scrapes into rates and totals grouped as an operator reads
// them, and shows them full screen on a terminal (tcell) or as plain lines.
//
// A figure the daemon does not export shows as "—", so one top works with
// older and newer daemons; families it does not know (pack mode's
// qos_pack_*, any other qos_*) are shown generically, counters as a rate
// and a total, gauges as a value.
package top
