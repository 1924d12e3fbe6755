module example.com/bad

go 1.26

require example.com/unused v0.0.0

replace example.com/unused => ./unused
