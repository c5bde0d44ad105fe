package serve

import (
	"context"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/imagefile"
	"github.com/diffsim/diffsim/session"
)

// checkImages reads the headers of a request's image files with the checks every command
// makes (imagefile: regular files within the size cap and the pixel limit), before a model
// loads: a FIFO, a device or a typo is a 400 at once. It returns the memory the images take
// once read and decoded.
func (s *Server) checkImages(ctx context.Context, paths ...string) (int64, error) {
	var n int64
	for _, p := range paths {
		info, err := imagefile.Check(ctx, p, s.cfg.Base.Images)
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, badRequest(err)
		}
		n += imageBytes(info)
	}
	return n, nil
}

// imageBytes is what one image takes while a request holds it: its encoded bytes and its
// decoded pixels.
func imageBytes(info imagefile.Info) int64 { return info.Bytes + info.DecodedBytes() }

// rankBytes is what a ranking holds at once: the query and two images (session.Rank runs the
// files in pairs), sized by the largest. Files whose header fails are left to the ranking,
// which lists them as skipped.
func (s *Server) rankBytes(ctx context.Context, query string, files []string) (int64, error) {
	n, err := s.checkImages(ctx, query)
	if err != nil {
		return 0, err
	}
	var first, second int64
	for _, p := range files {
		info, err := imagefile.Check(ctx, p, s.cfg.Base.Images)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if err != nil {
			continue
		}
		switch b := imageBytes(info); {
		case b > first:
			first, second = b, first
		case b > second:
			second = b
		}
	}
	return n + first + second, nil
}

// loadImage reads an image as every command does (session.LoadImage), within the server's
// limits, stopping when the request ends.
func (s *Server) loadImage(ctx context.Context, path string) (*api.Image, error) {
	img, err := session.LoadImage(ctx, path, s.cfg.Base.Images)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, badRequest(err)
	}
	return img, nil
}

func (s *Server) loadPair(ctx context.Context, pa, pb string) (*api.Image, *api.Image, error) {
	a, err := s.loadImage(ctx, pa)
	if err != nil {
		return nil, nil, err
	}
	b, err := s.loadImage(ctx, pb)
	if err != nil {
		return nil, nil, err
	}
	return a, b, nil
}
