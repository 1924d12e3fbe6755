// Command tiny is a thin main.
package main

func main() {}
