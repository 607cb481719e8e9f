module nsboot

go 1.19
