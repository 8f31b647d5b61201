package httpapi

func (s *Server) routeExecute() {}
