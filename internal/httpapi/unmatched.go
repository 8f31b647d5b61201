package httpapi

func (s *Server) routeUnmatched() {}
