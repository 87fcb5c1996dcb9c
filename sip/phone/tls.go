package phone

import "github.com/emiago/sipgo/sip"

// InviteResponse is the final response that answered the call (its
// Contact says which transport and port the far end wants in-dialog
// requests on, e.g. ;transport=tls).
func (c *Call) InviteResponse() *sip.Response { return c.dialog.InviteResponse }
