// The README's Go example as a module of its own. nsboot.example/nsboot
// is the Go package's module path (.example is a reserved name, never
// fetched): a program requires it and points it at a copy of
// cbind/go/nsboot with `replace`, or vendors it (`go mod vendor`).
module nsboot.example/nsboot-hello

go 1.19

require nsboot.example/nsboot v0.0.0

replace nsboot.example/nsboot => ../../../cbind/go/nsboot
