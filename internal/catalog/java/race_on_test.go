//go:build race

package java

// raceEnabled: the race detector slows inflate tenfold or more.
const raceEnabled = true
