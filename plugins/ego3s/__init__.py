"""Ego3S (Select, Strengthen, Synchronize): Video-R1 data conversion, CSM selection and the ECR curriculum core."""
