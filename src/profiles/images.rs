//! Photo processing: sniff the real type from the bytes, decode with limits (no pixel floods or
//! decompression bombs), apply the EXIF orientation, then re-encode as JPEG — which drops EXIF,
//! GPS and every other piece of metadata — plus a thumbnail. CPU-bound: call it from
//! `spawn_blocking`.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

/// Largest upload, in bytes.
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;
/// Largest side of an accepted image, in pixels.
pub const MAX_SIDE: u32 = 8000;
/// Most pixels of an accepted image.
pub const MAX_PIXELS: u64 = 40_000_000;
/// Longest side of the stored photo; larger images are scaled down.
pub const STORED_MAX_SIDE: u32 = 2048;
/// Longest side of the thumbnail.
pub const THUMBNAIL_SIDE: u32 = 320;
const JPEG_QUALITY: u8 = 85;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhotoError {
    #[error("the file is not a JPEG, PNG or WebP image")]
    UnsupportedType,
    #[error(
        "the image is {width}×{height} pixels; at most {MAX_SIDE} px a side and 40 megapixels are accepted"
    )]
    TooManyPixels { width: u32, height: u32 },
    #[error("the image could not be decoded (damaged or truncated)")]
    Undecodable,
}

/// A re-encoded photo and its thumbnail.
pub struct ProcessedPhoto {
    pub jpeg: Vec<u8>,
    pub thumbnail: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// What the picture looks like, as a perceptual hash ([`fingerprint`]).
    pub fingerprint: Fingerprint,
    /// The same of the picture mirrored left to right (a mirrored copy is still the picture).
    pub mirrored: Fingerprint,
}

/// A perceptual hash of a picture: the signs of its brightness gradients, across and down,
/// on a 16×16 grid (144 bits). The same picture scaled, re-compressed or slightly recoloured
/// differs in a few bits, an unrelated one in about half. It does not let anyone rebuild the
/// picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(Vec<u8>);

/// Fingerprints at most this many bits apart are taken for the same picture. Measured on
/// photo-like pictures: a copy scaled to 80 % and re-encoded at JPEG quality 70 lies 3 bits or
/// fewer from its original, while no two of 200 unrelated pictures lie closer than 28
/// (`tests/api/removed_photos.rs`).
pub const SAME_PICTURE_BITS: u32 = 12;

impl Fingerprint {
    pub fn distance(&self, other: &Fingerprint) -> u32 {
        if self.0.len() != other.0.len() {
            return u32::MAX;
        }
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum()
    }

    /// Whether the picture has structure enough to be recognised: a nearly plain picture has
    /// almost no gradients, and remembering it would refuse every plain picture.
    pub fn is_distinctive(&self) -> bool {
        let bits = self.0.len() * 8;
        let set: usize = self.0.iter().map(|b| b.count_ones() as usize).sum();
        set * 10 >= bits && set * 10 <= bits * 9
    }

    /// As stored.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn from_stored(bytes: Vec<u8>) -> Fingerprint {
        Fingerprint(bytes)
    }
}

/// The fingerprint of a decoded picture.
pub fn fingerprint(img: &DynamicImage) -> Fingerprint {
    static HASHER: std::sync::OnceLock<image_hasher::Hasher> = std::sync::OnceLock::new();
    let hasher = HASHER.get_or_init(|| {
        image_hasher::HasherConfig::new()
            .hash_size(16, 16)
            .hash_alg(image_hasher::HashAlg::DoubleGradient)
            .to_hasher()
    });
    Fingerprint(hasher.hash_image(img).as_bytes().to_vec())
}

/// The fingerprint of a stored photo (re-encoded JPEG), for photos stored before fingerprints
/// were kept.
pub fn fingerprint_of_stored(bytes: &[u8]) -> Result<Fingerprint, PhotoError> {
    let decoder = decoder(bytes)?;
    let img = DynamicImage::from_decoder(decoder).map_err(|e| decode_error(&e))?;
    Ok(fingerprint(&img))
}

/// The format the bytes really are, whatever the file name or Content-Type claim.
pub fn sniff(bytes: &[u8]) -> Result<ImageFormat, PhotoError> {
    match infer::get(bytes).map(|t| t.mime_type()) {
        Some("image/jpeg") => Ok(ImageFormat::Jpeg),
        Some("image/png") => Ok(ImageFormat::Png),
        Some("image/webp") => Ok(ImageFormat::WebP),
        _ => Err(PhotoError::UnsupportedType),
    }
}

/// Whether a JPEG is whole: its end-of-image marker follows the start of scan. (Inside scan
/// data every 0xFF byte is stuffed, so `FF D9` there can only be the real end marker.) The
/// decoder would otherwise accept a truncated upload and fill the missing part with grey.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let Some(sos) = bytes.windows(2).position(|w| w == [0xFF, 0xDA]) else {
        return false;
    };
    bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Room for the resized copy, the thumbnail and the encoders beside the decoded image.
const WORKING_MEMORY: u64 = 48 * 1024 * 1024;

/// The memory decoding and re-encoding `bytes` will take, read from the header alone (width ×
/// height × bytes per pixel, plus working room); refuses what `process` would refuse for its
/// type or size.
pub fn decoding_memory(bytes: &[u8]) -> Result<u64, PhotoError> {
    let decoder = decoder(bytes)?;
    let (width, height) = decoder.dimensions();
    check_size(width, height)?;
    let per_pixel = u64::from(decoder.color_type().bytes_per_pixel());
    // The image is turned into RGB for the encoder: at least 3 bytes a pixel on the way.
    Ok(u64::from(width) * u64::from(height) * per_pixel.max(3) + WORKING_MEMORY)
}

fn check_size(width: u32, height: u32) -> Result<(), PhotoError> {
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(PhotoError::TooManyPixels { width, height });
    }
    Ok(())
}

/// A decoder for the bytes' real type, with the size limits set.
fn decoder(bytes: &[u8]) -> Result<impl ImageDecoder + '_, PhotoError> {
    let format = sniff(bytes)?;
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(PhotoError::Undecodable);
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    // Decoded RGBA of the largest accepted image, plus working room.
    limits.max_alloc = Some(MAX_PIXELS * 4 + 64 * 1024 * 1024);
    reader.limits(limits);
    reader.into_decoder().map_err(|e| decode_error(&e))
}

pub fn process(bytes: &[u8]) -> Result<ProcessedPhoto, PhotoError> {
    let mut decoder = decoder(bytes)?;
    let (width, height) = decoder.dimensions();
    check_size(width, height)?;
    let orientation = decoder.orientation().map_err(|e| decode_error(&e))?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| decode_error(&e))?;
    img.apply_orientation(orientation);

    let stored = if img.width().max(img.height()) > STORED_MAX_SIDE {
        img.resize(STORED_MAX_SIDE, STORED_MAX_SIDE, FilterType::Triangle)
    } else {
        img
    };
    let thumbnail = stored.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE);
    Ok(ProcessedPhoto {
        fingerprint: fingerprint(&stored),
        // Mirrored at a size the hash hardly sees, so as to take little memory.
        mirrored: fingerprint(&stored.thumbnail(256, 256).fliph()),
        width: stored.width(),
        height: stored.height(),
        jpeg: encode_jpeg(&stored)?,
        thumbnail: encode_jpeg(&thumbnail)?,
    })
}

fn decode_error(err: &image::ImageError) -> PhotoError {
    match err {
        image::ImageError::Limits(_) => PhotoError::TooManyPixels {
            width: 0,
            height: 0,
        },
        _ => PhotoError::Undecodable,
    }
}

fn encode_jpeg(img: &DynamicImage) -> Result<Vec<u8>, PhotoError> {
    let rgb = img.to_rgb8();
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(&rgb)
        .map_err(|_| PhotoError::Undecodable)?;
    Ok(out)
}
