"""Service points: red homes, party-masses service centres, outlets and their kinds."""
