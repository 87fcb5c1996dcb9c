package sip

// SetTrunks replaces who may call (a configuration reload), validated as
// NewServer validates Config.Trunks and Config.AuthLimit; on error nothing
// changes. Calls and dialogs in progress are unaffected; the next request
// is screened against the new trunks. Outstanding digest challenges carry
// over, and so do blocked sources unless the limits changed.
func (s *Server) SetTrunks(trunks []Trunk, lim AuthLimit) error {
	trunks, lim, err := trunksWithDefaults(trunks, s.cfg.AdvertiseHost, lim)
	if err != nil {
		return err
	}
	a := newAuthenticatorFor(s, trunks, lim)
	if old := s.auth.Load(); a != nil && old != nil {
		a.nonces, a.logLim = old.nonces, old.logLim
		if old.limiter.lim == lim {
			a.limiter = old.limiter
		}
	}
	s.auth.Store(a)
	return nil
}
