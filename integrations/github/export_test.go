package github

// SetAuditLimit lowers the audit listings' limit of c, so a test reaches it with a few pages.
func SetAuditLimit(c *Client, n int) { c.auditLimit = n }
