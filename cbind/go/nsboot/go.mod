module nsboot.example/nsboot

go 1.19
