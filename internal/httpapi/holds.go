package httpapi

func (s *Server) routeHolds() {}
