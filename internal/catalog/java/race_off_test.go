//go:build !race

package java

const raceEnabled = false
