//! Coordinates, great-circle distances and location privacy.
//!
//! Distances use the haversine formula on a sphere of the mean Earth radius (IUGG, 6371.0088
//! km): within 0.5 % of the ellipsoid, which is far below the rounding we show. Other people's
//! positions are never returned; distances to them are computed from their point snapped to a
//! ~1 km grid and rounded to whole units, at least 1.

use crate::error::ApiError;

/// Mean Earth radius in kilometres.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;
/// Kilometres in one international mile.
pub const KM_PER_MILE: f64 = 1.609_344;
/// Grid step for other people's positions, in degrees of latitude (~1.1 km).
pub const GRID_DEGREES: f64 = 0.01;

/// A valid position: finite, latitude in [-90, 90], longitude in [-180, 180].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coordinates {
    lat: f64,
    lon: f64,
}

impl Coordinates {
    /// Anything outside the ranges (or not finite) is refused, naming the field.
    pub fn parse(latitude: f64, longitude: f64) -> Result<Coordinates, ApiError> {
        if !latitude.is_finite() || !(-90.0..=90.0).contains(&latitude) {
            return Err(ApiError::bad_input(
                "latitude",
                "latitude must be a number between -90 and 90",
            ));
        }
        if !longitude.is_finite() || !(-180.0..=180.0).contains(&longitude) {
            return Err(ApiError::bad_input(
                "longitude",
                "longitude must be a number between -180 and 180",
            ));
        }
        Ok(Coordinates {
            lat: latitude,
            lon: longitude,
        })
    }

    pub fn latitude(self) -> f64 {
        self.lat
    }

    pub fn longitude(self) -> f64 {
        self.lon
    }

    /// The point snapped to the privacy grid: latitude to `GRID_DEGREES`, longitude to a step
    /// of about the same length in kilometres at that latitude.
    pub fn snapped(self) -> Coordinates {
        let lat = ((self.lat / GRID_DEGREES).round() * GRID_DEGREES).clamp(-90.0, 90.0);
        let cos = lat.to_radians().cos().max(0.01);
        let lon_step = (GRID_DEGREES / cos).min(360.0);
        let mut lon = (self.lon / lon_step).round() * lon_step;
        if lon > 180.0 {
            lon -= 360.0;
        }
        if lon < -180.0 {
            lon += 360.0;
        }
        Coordinates { lat, lon }
    }
}

/// Great-circle distance in kilometres (haversine). Symmetric: A to B is B to A.
pub fn haversine_km(a: Coordinates, b: Coordinates) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

pub fn km_to_miles(km: f64) -> f64 {
    km / KM_PER_MILE
}

pub fn miles_to_km(miles: f64) -> f64 {
    miles * KM_PER_MILE
}

/// What another person is shown: whole units, at least 1.
pub fn display_distance(km: f64, miles: bool) -> i32 {
    let value = if miles { km_to_miles(km) } else { km };
    // Saturating: the largest possible distance (half the circumference) is ~20 000 km.
    (value.round() as i32).max(1)
}

/// A latitude/longitude box containing every point within `radius_km` of `center` (used as
/// the R*Tree prefilter on SQLite; exact distances are checked afterwards).
pub fn bounding_box(center: Coordinates, radius_km: f64) -> (f64, f64, f64, f64) {
    let dlat = (radius_km / EARTH_RADIUS_KM).to_degrees();
    let min_lat = (center.lat - dlat).max(-90.0);
    let max_lat = (center.lat + dlat).min(90.0);
    let cos = center
        .lat
        .abs()
        .max(min_lat.abs())
        .max(max_lat.abs())
        .to_radians()
        .cos();
    if cos < 1e-6 || max_lat >= 90.0 || min_lat <= -90.0 {
        return (min_lat, max_lat, -180.0, 180.0);
    }
    let dlon = (radius_km / (EARTH_RADIUS_KM * cos)).to_degrees();
    if dlon >= 180.0 {
        return (min_lat, max_lat, -180.0, 180.0);
    }
    (min_lat, max_lat, center.lon - dlon, center.lon + dlon)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(lat: f64, lon: f64) -> Coordinates {
        Coordinates::parse(lat, lon).expect("valid")
    }

    #[test]
    fn known_distances() {
        // Berlin Brandenburger Tor → Munich Marienplatz: ~504 km.
        let d = haversine_km(c(52.5163, 13.3777), c(48.1374, 11.5755));
        assert!((d - 504.0).abs() < 3.0, "{d}");
        assert_eq!(haversine_km(c(10.0, 10.0), c(10.0, 10.0)), 0.0);
        // Antipodes: half the circumference.
        let half = haversine_km(c(0.0, 0.0), c(0.0, 180.0));
        assert!((half - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1e-6);
    }

    #[test]
    fn displayed_distances_are_whole_and_at_least_one() {
        assert_eq!(display_distance(0.0, false), 1);
        assert_eq!(display_distance(0.4, true), 1);
        assert_eq!(display_distance(10.6, false), 11);
        assert_eq!(display_distance(16.09344, true), 10);
    }

    #[test]
    fn snapping_moves_a_point_by_at_most_about_a_kilometre() {
        for (lat, lon) in [
            (52.5163, 13.3777),
            (-33.86, 151.21),
            (89.99, 10.0),
            (0.004, 179.999),
        ] {
            let p = c(lat, lon);
            let s = p.snapped();
            assert!(
                haversine_km(p, s) < 1.0,
                "{lat},{lon} moved {} km",
                haversine_km(p, s)
            );
            assert!(Coordinates::parse(s.latitude(), s.longitude()).is_ok());
        }
    }

    #[test]
    fn the_box_contains_the_circle() {
        let center = c(52.5, 13.4);
        let (min_lat, max_lat, min_lon, max_lon) = bounding_box(center, 25.0);
        for bearing in 0..36 {
            let b = f64::from(bearing * 10).to_radians();
            // A point ~24.9 km away in this direction.
            let lat = 52.5 + (24.9 / EARTH_RADIUS_KM).to_degrees() * b.cos();
            let lon =
                13.4 + (24.9 / (EARTH_RADIUS_KM * lat.to_radians().cos())).to_degrees() * b.sin();
            assert!((min_lat..=max_lat).contains(&lat) && (min_lon..=max_lon).contains(&lon));
        }
    }
}
