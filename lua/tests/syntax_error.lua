-- scenario: a script that does not load: a host diagnostic on stderr, status 1
-- status: 1
print("never"
x = = 1
