package lookertest

import "github.com/looker-rerun/looker-rerun/looker"

// hooks are the test's code the fake runs between its own steps, so a test
// can change the table at an exact point of a client's conversation.
// Server.mu guards them; the fake calls them without it.
type hooks struct {
	afterQuery func(q looker.Query)
}

// AfterQuery has the fake call fn after it evaluates each run_inline_query
// on System Activity and before it writes the answer, outside its lock: fn
// may call the Server (FinishJob, AddJob, EditPlan...), and what it changes
// shows in the client's next query, not this one. fn runs for every query
// until replaced; nil clears it. It runs on the server's goroutine, so it
// must not call t.FailNow.
func (s *Server) AfterQuery(fn func(q looker.Query)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks.afterQuery = fn
}

// afterQuery calls the AfterQuery hook, if any, with the lock released.
func (s *Server) afterQuery(q looker.Query) {
	s.mu.Lock()
	fn := s.hooks.afterQuery
	s.mu.Unlock()
	if fn != nil {
		fn(q)
	}
}
