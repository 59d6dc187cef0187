package httpapi.authz_test

import data.httpapi.authz

test_reader_reads if authz.allow with input as {"method": "GET", "path": "/docs/1", "user": {"roles": ["reader"]}}
