package jira

// ProjectsWaiters is how many callers wait for the project fetch in flight (0 when none), so a
// test knows they joined it before letting it finish.
func ProjectsWaiters(c *Client) int {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if c.fetching == nil {
		return 0
	}
	return c.fetching.waiters
}
