package httpapi

func (s *Server) routeCanvases() {}
