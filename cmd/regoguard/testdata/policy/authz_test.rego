package httpapi.authz_test

import data.httpapi.authz

test_reader_reads if {
	authz.allow with input as {"method": "GET", "path_segments": ["docs"], "user": {"claims": {"groups": ["reader"]}}}
}

test_reader_cannot_write if {
	not authz.allow with input as {"method": "POST", "path_segments": ["docs"], "body": {"title": "x"}, "user": {"claims": {"groups": ["reader"]}}}
}
