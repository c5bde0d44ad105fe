package features

import (
	"image"
	"image/color"

	"golang.org/x/image/draw"
)

// ResizeSquare scales an image to size×size (aspect not kept), as the diffusion reference
// does, with Catmull-Rom filtering.
func ResizeSquare(src image.Image, size int) *image.RGBA {
	return Resize(src, size, size)
}

// Resize scales an image to w×h with Catmull-Rom filtering.
func Resize(src image.Image, w, h int) *image.RGBA {
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil)
	return dst
}

// ResizeShortCrop scales the shortest side to short (bicubic) and centre-crops crop×crop,
// as CLIP and DINOv2 preprocessing do.
func ResizeShortCrop(src image.Image, short, crop int) *image.RGBA {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	var nw, nh int
	if w < h {
		nw, nh = short, max(1, int(float64(h)*float64(short)/float64(w)+0.5))
	} else {
		nw, nh = max(1, int(float64(w)*float64(short)/float64(h)+0.5)), short
	}
	scaled := Resize(src, nw, nh)
	x0, y0 := (nw-crop)/2, (nh-crop)/2
	dst := image.NewRGBA(image.Rect(0, 0, crop, crop))
	draw.Copy(dst, image.Point{}, scaled, image.Rect(x0, y0, x0+crop, y0+crop), draw.Src, nil)
	return dst
}

// CHW converts an image to planar float32 RGB, mapping each 8-bit value v to
// (v/255 − mean[c]) / std[c]. Mean 0.5 and std 0.5 give the diffusion range [−1, 1].
func CHW(img image.Image, mean, std [3]float32) []float32 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := make([]float32, 3*w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			i := y*w + x
			out[i] = (float32(c.R)/255 - mean[0]) / std[0]
			out[w*h+i] = (float32(c.G)/255 - mean[1]) / std[1]
			out[2*w*h+i] = (float32(c.B)/255 - mean[2]) / std[2]
		}
	}
	return out
}

// Diffusion normalisation: [0,1] → [−1,1].
var (
	HalfMean = [3]float32{0.5, 0.5, 0.5}
	HalfStd  = [3]float32{0.5, 0.5, 0.5}
)
