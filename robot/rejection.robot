*** Settings ***
Documentation     Bad models are refused by the command line with exit code 2 and one clear error
...               line (DESIGN §7), never a traceback.
Resource          resources/msfsim.resource
Library           resources/bad_models.py
Suite Setup       Create Bad Models


*** Test Cases ***
Not an ONNX file
    Model Should Be Rejected    ${BAD}[garbage]    not an ONNX model

Unsupported operator
    ${error}=    Model Should Be Rejected    ${BAD}[unsupported_op]    unsupported op 'Sin'
    Should Contain    ${error}    supported:

Dynamic input shape
    Model Should Be Rejected    ${BAD}[dynamic_shape]    --input-shape

Missing file
    Model Should Be Rejected    ${BAD}[missing]    no such file

Unknown zoo model
    Model Should Be Rejected    zoo:no-such-model    unknown zoo model

Unknown board
    Model Should Be Rejected    zoo:lenet5-r28    unknown platform    platform=no-such-board


*** Keywords ***
Create Bad Models
    ${bad}=    Write Bad Models    ${OUTPUT DIR}/bad-models
    Set Suite Variable    ${BAD}    ${bad}
