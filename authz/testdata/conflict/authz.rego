# A policy with a bug: both rules fire when the input has x and y, which is
# an evaluation error in OPA (complete rule with two values).
package httpapi.authz

allow := true if input.headers.x
allow := false if input.headers.y
