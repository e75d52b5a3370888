module mamori

go 1.26
