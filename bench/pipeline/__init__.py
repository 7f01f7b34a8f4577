"""`bench pipeline`: select -> train -> evaluate -> gate -> report in one command, each stage
fingerprinted by its inputs so an unchanged stage is skipped and a killed one resumes."""
