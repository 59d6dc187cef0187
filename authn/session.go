package authn

import (
	"github.com/regoguard/regoguard/authn/internal/websession"
)

// MinCookieKeyLen is the minimum length of a cookie secret.
const MinCookieKeyLen = websession.MinKeyLen

// ErrSessionTooLarge is reported when a session does not fit in the allowed
// number of cookies even after trimming.
var ErrSessionTooLarge = websession.ErrSessionTooLarge
