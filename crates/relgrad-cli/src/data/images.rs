//! The image shape recorded for rows of pixels, for the figures (`samples.png`, `relgrad
//! sample --png`), which draw each row as a grey-level picture of `height x width`.
//!
//! The model file's image shape has no channels, so colour images are drawn as their
//! channels side by side, in the order the values are stored:
//! - `n x h x w` arrays are `h x w` images;
//! - channels-last `n x h x w x c` arrays (`c` of 1 to 4, NumPy's and PIL's layout) are
//!   `h x (w c)`: each pixel's channels are `c` adjacent grey pixels;
//! - channels-first `n x c x h x w` arrays (`c` of 1 to 4, CIFAR-10's binary layout) are
//!   `(c h) x w`: the channel planes stacked, red on top of green on top of blue.
//!
//! When both the second and the last axis could be channels, channels-last is assumed.

use super::ImageShape;

/// The most channels an axis of an image array is taken to be.
pub const MAX_CHANNELS: usize = 4;

/// The image shape of an array of `shape` (the first axis the samples), if it is one.
pub fn image_of_shape(shape: &[usize]) -> Option<ImageShape> {
    let channels = |c: usize| (1..=MAX_CHANNELS).contains(&c);
    match *shape {
        [_, h, w] => Some(ImageShape {
            height: h,
            width: w,
        }),
        [_, h, w, c] if channels(c) => Some(ImageShape {
            height: h,
            width: w * c,
        }),
        [_, c, h, w] if channels(c) => Some(ImageShape {
            height: c * h,
            width: w,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hw(shape: &[usize]) -> Option<(usize, usize)> {
        image_of_shape(shape).map(|s| (s.height, s.width))
    }

    #[test]
    fn shapes() {
        assert_eq!(hw(&[5, 28, 28]), Some((28, 28)));
        assert_eq!(hw(&[5, 32, 32, 3]), Some((32, 96)));
        assert_eq!(hw(&[5, 3, 32, 32]), Some((96, 32)));
        assert_eq!(hw(&[5, 28, 28, 1]), Some((28, 28)));
        assert_eq!(hw(&[5, 2, 2, 3]), Some((2, 6)));
        assert_eq!(hw(&[5, 64]), None);
        assert_eq!(hw(&[5, 10, 10, 10]), None);
        assert_eq!(hw(&[5]), None);
    }
}
