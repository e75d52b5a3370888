module example.com/oldapp

go 1.19

require (
	golang.org/x/crypto v0.0.0-20200220183623-bac4c82f6975
	golang.org/x/net v0.0.0-20220127200216-cd36cc0744dd
	golang.org/x/text v0.3.7
)
